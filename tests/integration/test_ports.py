"""A host port the file asks for that something else holds is refused before anything changes, by
diff and apply, naming who holds it."""

from __future__ import annotations

import socket

import docker

from pgtopo import labels as L

from .conftest import IMAGE, objects, pgtopo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_held_by_another_process_is_refused_before_anything_is_made(make_cluster,
                                                                           engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        c.write(f"primary: primary\nnodes:\n  primary: {{port: {port}}}\n  replica: {{}}\n")
        for command in (["diff"], ["apply", "--yes"]):
            result = pgtopo(*command, str(c.path))
            assert result.code == 1, result
            assert f"primary: host port {port} is taken by another process on this host; free it or change " \
                   "nodes.primary.port in the file" in result.out + result.err, result
            assert "Traceback" not in result.err
        assert objects(engine, c.name) == {"containers": [], "networks": [], "volumes": []}
    assert pgtopo("apply", str(c.path), "--yes").code == 0  # once it is free


def test_a_port_published_by_another_container_is_refused_naming_it(make_cluster,
                                                                    engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    port = free_port()
    holder = engine.containers.run(IMAGE, ["sleep", "300"], name=f"{c.name}-x-holder", detach=True,
                                   ports={"5432/tcp": ("127.0.0.1", port)}, labels={L.CLUSTER: c.name})
    try:
        c.write(f"primary: primary\nnodes:\n  primary: {{}}\n  replica: {{port: {port}}}\n")
        result = pgtopo("diff", str(c.path))
        assert result.code == 1, result
        assert f"replica: host port {port} is taken by container {holder.name}" in result.out + result.err, result
    finally:
        holder.remove(force=True)
