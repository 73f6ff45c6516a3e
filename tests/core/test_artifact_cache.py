"""The disk cache of derived artifacts: a variant is exported to ONNX once, across processes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.core.model import artifact_cache, onnx_export
from workbench.core.model.zoo import build_zoo


@pytest.fixture
def export_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the variants the real exporter ran on; the memory cache starts empty."""
    calls: list[str] = []
    real = onnx_export._export_onnx

    def counting(variant: Any, *args: Any) -> Any:
        calls.append(variant.name)
        return real(variant, *args)

    monkeypatch.setattr(onnx_export, "_export_onnx", counting)
    onnx_export.clear_export_cache()
    yield calls
    onnx_export.clear_export_cache()


def entries() -> list[Path]:
    folder = artifact_cache.cache_dir()
    return sorted(folder.glob("*.onnx")) if folder.is_dir() else []


def small_model(width: int) -> Any:
    """A one-node ONNX model whose size grows with `width`."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((width, width), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])], initializer=[w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def key_of(variant: Any, opset: int = 18, dynamic_batch: bool = True) -> Any:
    return onnx_export.artifact_key(variant, opset, dynamic_batch)


def test_tests_never_write_to_the_users_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert artifact_cache.cache_dir().is_relative_to(tmp_path_factory.getbasetemp())


def test_a_fresh_process_state_reads_the_export_from_disk(export_calls: list[str]) -> None:
    first = onnx_export.export_onnx(build_zoo("mlp"))
    assert export_calls == ["zoo:mlp"]
    assert len(entries()) == 1
    onnx_export.clear_export_cache()  # as a new process would start
    again = onnx_export.export_onnx(build_zoo("mlp"))  # same content, another variant id
    assert export_calls == ["zoo:mlp"]
    assert again.model.SerializeToString() == first.model.SerializeToString()
    assert (again.exporter, again.warnings) == (first.exporter, first.warnings)
    assert [p.key for p in again.model.metadata_props] == [onnx_export.EXPORTER_KEY]


def test_the_key_follows_content_not_the_variant_id() -> None:
    a, b = build_zoo("mlp"), build_zoo("mlp")
    assert a.id != b.id
    assert a.content_hash == b.content_hash
    assert key_of(a) == key_of(b)
    others = [key_of(build_zoo("mlp", seed=1)),  # other weights
              key_of(build_zoo("mlp", input_shape=(1, 32))),  # another input shape
              key_of(a, opset=17), key_of(a, dynamic_batch=False)]
    digests = {k.digest for k in [key_of(a), *others]}
    assert len(digests) == 5


def test_a_changed_plain_attribute_changes_the_hash() -> None:
    import torch

    from workbench.core.model.variant import InputSpec, Variant

    class Scale(torch.nn.Module):
        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = factor

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.factor

    def variant(factor: float) -> Variant:
        return Variant("scale", "torch", Scale(factor), "zoo", (InputSpec("x", (1, 4)),))

    assert variant(2.0).content_hash == variant(2.0).content_hash
    assert variant(2.0).content_hash != variant(3.0).content_hash


def test_onnx_variants_are_not_cached(onnx_mlp: Path) -> None:
    from workbench.core.model.loaders import load_model

    variant = load_model(str(onnx_mlp))
    assert variant.content_hash is None
    assert key_of(variant) is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_a_damaged_entry_is_ignored_and_deleted(damage: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    key = key_of(build_zoo("mlp"))
    path = artifact_cache.store_onnx(key, small_model(8), {"notes": "[]"})
    assert path is not None
    loaded = artifact_cache.load_onnx(key)
    assert loaded is not None
    assert loaded[1] == {"notes": "[]"}
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"\x08" * 300,
               "flip": data[:40] + bytes([data[40] ^ 1]) + data[41:]}[damage]
    path.write_bytes(damaged)
    with caplog.at_level(logging.DEBUG, logger=artifact_cache.__name__):
        assert artifact_cache.load_onnx(key) is None
    assert "ignoring cache entry" in caplog.text
    assert not path.exists()


def test_an_entry_under_another_key_is_a_miss() -> None:
    key, other = key_of(build_zoo("mlp")), key_of(build_zoo("mlp", seed=1))
    path = artifact_cache.store_onnx(key, small_model(8))
    assert path is not None
    path.rename(artifact_cache.entry_path(other))  # as a hash collision would look
    assert artifact_cache.load_onnx(other) is None


def test_a_corrupt_entry_is_rebuilt_by_the_exporter(export_calls: list[str]) -> None:
    onnx_export.export_onnx(build_zoo("mlp"))
    [path] = entries()
    good = path.read_bytes()
    path.write_bytes(good[: len(good) - 100])
    onnx_export.clear_export_cache()
    export = onnx_export.export_onnx(build_zoo("mlp"))  # no error for the user
    assert export_calls == ["zoo:mlp", "zoo:mlp"]
    assert path.read_bytes() == good  # written again, whole
    assert export.model.graph.node


def test_least_recently_used_entries_are_evicted_under_the_cap() -> None:
    keys = [key_of(build_zoo("mlp", seed=s)) for s in range(4)]
    model = small_model(64)  # about 16 kB per entry
    first = artifact_cache.store_onnx(keys[0], model)
    assert first is not None
    size = first.stat().st_size
    artifact_cache.set_cache_limit(int(2.5 * size))
    try:
        artifact_cache.store_onnx(keys[1], model)
        assert artifact_cache.load_onnx(keys[0]) is not None  # 0 is now newer than 1
        artifact_cache.store_onnx(keys[2], model)
        present = [artifact_cache.load_onnx(k) is not None for k in keys[:3]]
        assert present == [True, False, True]
        assert artifact_cache.store_onnx(keys[3], small_model(128)) is None  # over the cap
        assert len(entries()) == 2
        artifact_cache.set_cache_limit(0)
        assert entries() == []
    finally:
        artifact_cache.set_cache_limit(artifact_cache.DEFAULT_LIMIT)


def test_an_unwritable_cache_folder_is_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    artifact_cache.set_cache_dir(blocker / "cache")
    key = key_of(build_zoo("mlp"))
    assert artifact_cache.store_onnx(key, small_model(8)) is None
    assert artifact_cache.load_onnx(key) is None


def test_the_cache_folder_follows_the_project(tmp_path: Path, export_calls: list[str]) -> None:
    from workbench.core.session.session import Session

    session = Session(remember_recent=False)
    session.save_as_project(str(tmp_path / "project"))
    assert artifact_cache.cache_dir() == tmp_path / "project" / "cache"
    onnx_export.export_onnx(build_zoo("mlp"))
    assert len(list((tmp_path / "project" / "cache").glob("*.onnx"))) == 1
    session.clear()  # no project: back to the default folder
    assert artifact_cache.cache_dir() == artifact_cache.default_cache_dir()
