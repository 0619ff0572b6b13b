"""The shared chores: atomic writes leave the old file or the new one and name the user's path in errors;
checksummed safetensors refuse damaged files; thread counts are restored."""

from __future__ import annotations

import pytest
import torch

from varinf.utils import (
    SafetensorsError,
    atomic_output,
    atomic_write_bytes,
    atomic_write_text,
    num_threads,
    read_safetensors,
    write_safetensors,
)


def test_atomic_write_replaces_and_creates_parents(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_keeps_old_file_and_leaves_no_temporary(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(error), atomic_output(path) as tmp:
        tmp.write_bytes(b"half")
        raise error()
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_overwrite_off_refuses_existing_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError, match=r"out\.bin"):
        atomic_write_bytes(path, b"new", overwrite=False)
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_errors_name_the_users_path_not_the_temporary_file(tmp_path):
    path = tmp_path / "taken"
    path.mkdir()  # os.replace of a file onto a folder fails
    with pytest.raises(OSError) as err:
        atomic_write_bytes(path, b"x")
    assert str(path) in str(err.value) and ".tmp" not in str(err.value)
    assert list(tmp_path.iterdir()) == [path]


def test_safetensors_round_trip_and_damage(tmp_path):
    path = tmp_path / "w.safetensors"
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    write_safetensors(path, tensors, {"step": 3}, format="test/1")
    back, meta = read_safetensors(path, format="test/1")
    assert meta == {"step": 3} and all(torch.equal(back[k], tensors[k]) for k in tensors)
    with pytest.raises(SafetensorsError, match="not a 'other/1' file"):
        read_safetensors(path, format="other/1")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip bits in the tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(SafetensorsError, match="checksum"):
        read_safetensors(path, format="test/1")
    path.write_bytes(bytes(data[:20]))
    with pytest.raises(SafetensorsError, match=r"w\.safetensors"):
        read_safetensors(path, format="test/1")


def test_num_threads_restores_the_count_even_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), num_threads(before + 1):
        assert torch.get_num_threads() == before + 1
        raise RuntimeError
    assert torch.get_num_threads() == before
    with num_threads(None):
        assert torch.get_num_threads() == before
