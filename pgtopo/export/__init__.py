"""Manifests for other tools, made from a topology file alone (`pgtopo export`): no Docker, no server.

    cnpg.py        the file's cluster as a CloudNativePG Cluster (and a Database per database): plain dicts
                   and the warnings for what CloudNativePG cannot say; pure
    yaml_text.py   those documents as YAML text that kubectl reads back as they were meant
"""
