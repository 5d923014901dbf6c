"""Settings checked against the image's own server, for images whose major pgtopo ships no catalog
for: the catalog the server gives agrees with the shipped one where both exist, and an unknown
parameter is refused by diff, apply and switchover through it (FILE:LINE:COL, exit 2, nothing
made), while validate stays offline."""

from __future__ import annotations

import time

import docker
import pytest

from pgtopo import image_catalog, pg_settings
from pgtopo.spec import Topology

from .conftest import IMAGE, IMAGES, PAIR, objects, pgtopo

SHIPPED = [image for image in IMAGES if pg_settings.catalog(pg_settings.major_of_image(image) or 0) is not None]


@pytest.mark.parametrize("image", SHIPPED)
def test_the_servers_catalog_agrees_with_the_shipped_one(make_cluster, engine: docker.DockerClient, image: str,
                                                         tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = make_cluster(image)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(image_catalog, "_seen", {})
    topo = Topology.model_validate({"version": 1, "cluster": c.name, "image": image, "primary": "p", "nodes": {"p": {}}})
    started = time.monotonic()
    known = image_catalog.server_catalog(engine, topo)  # asked directly, although a catalog ships
    print(f"{image}: the server's catalog in {time.monotonic() - started:.1f} s")
    shipped = pg_settings.catalog(pg_settings.major_of_image(image) or 0)
    assert known is not None and shipped is not None
    assert known.major == pg_settings.major_of_image(image)
    assert sorted(known.settings) == sorted(shipped)
    assert {n: (s.vartype, s.unit, s.min, s.max, s.enumvals, s.context) for n, s in known.settings.items()} == \
        {n: (s.vartype, s.unit, s.min, s.max, s.enumvals, s.context) for n, s in shipped.items()}
    assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}  # the job removed itself


def test_an_unknown_parameter_is_refused_through_the_server(make_cluster, engine: docker.DockerClient,
                                                            tmp_path) -> None:
    """The image by its id: a reference that names no major, so no shipped catalog covers it."""
    image_id = engine.api.inspect_image(IMAGE)["Id"]
    c = make_cluster(image_id)
    c.write(PAIR + "parameters:\n  max_conections: 50\n  work_mem: 8MB\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    where = f"{c.path}:9:3: parameters.max_conections: parameter 'max_conections' is not a setting of PostgreSQL"
    said = "did you mean 'max_connections'?"

    assert pgtopo("validate", str(c.path), env=env).code == 0  # offline: not checked
    started = time.monotonic()
    diff = pgtopo("diff", str(c.path), env=env)
    first = time.monotonic() - started
    assert diff.code == 2 and where in diff.err and said in diff.err, diff
    assert list((tmp_path / "cache" / "pgtopo").glob("settings-*.txt")), "the answer was not kept"
    started = time.monotonic()
    apply = pgtopo("apply", str(c.path), "--yes", env=env)
    print(f"first diff {first:.1f} s (asks the server), apply {time.monotonic() - started:.1f} s (kept answer)")
    assert apply.code == 2 and where in apply.err, apply
    before = c.path.read_text()
    switch = pgtopo("switchover", str(c.path), "--to", "replica", "--yes", env=env)
    assert switch.code == 2 and where in switch.err and c.path.read_text() == before, switch
    assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}  # nothing touched

    c.write(PAIR + "parameters:\n  max_connections: 50\n  work_mem: 8MB\n")
    fixed = pgtopo("diff", str(c.path), env=env)
    assert fixed.code == 1 and "init" in fixed.out, fixed  # known to the server: the plan is shown
