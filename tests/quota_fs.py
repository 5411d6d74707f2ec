"""A real pyarrow filesystem with a byte quota: the local filesystem through
``pyarrow.fs.PyFileSystem``, whose writes fail with ENOSPC ("No space left on device") once the
files on it hold ``budget`` bytes -- a disk that fills mid-run, on any machine and without root.
As on a disk, deleting a file or replacing it by a rename gives its bytes back.
"""

from __future__ import annotations

import errno
import os

import pyarrow as pa
import pyarrow.fs as pafs


class _QuotaFile:
    """A binary file that counts what it writes against its filesystem's budget."""

    def __init__(self, path: str, quota: QuotaHandler) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 (closed by pyarrow through close())
        self._quota = quota
        self.closed = False

    def write(self, data) -> int:
        size = len(memoryview(data))
        if self._quota.written + size > self._quota.budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._quota.written += size
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._file.tell()


class QuotaHandler(pafs.FileSystemHandler):
    """Local files, but at most ``budget`` bytes on it at once (raise it to "free space")."""

    def __init__(self, budget: int) -> None:
        self.budget, self.written = budget, 0
        self._fs = pafs.LocalFileSystem()

    def get_type_name(self) -> str:
        return "quota"

    def equals(self, other) -> bool:
        return other is self

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths):
        return self._fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self._fs.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to empty /")

    def _size(self, path: str) -> int:
        info = self._fs.get_file_info(path)
        return info.size if info.type == pafs.FileType.File else 0

    def delete_file(self, path: str) -> None:
        freed = self._size(path)
        self._fs.delete_file(path)
        self.written -= freed

    def move(self, src: str, dest: str) -> None:
        replaced = self._size(dest)  # a rename onto a file frees the file it replaces
        self._fs.move(src, dest)
        self.written -= replaced

    def copy_file(self, src: str, dest: str) -> None:
        self._fs.copy_file(src, dest)

    def open_input_stream(self, path: str):
        return self._fs.open_input_stream(path)

    def open_input_file(self, path: str):
        return self._fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata=None):
        return pa.PythonFile(_QuotaFile(path, self), mode="w")

    def open_append_stream(self, path: str, metadata=None):
        raise OSError("append is not supported")


def quota_fs(budget: int) -> tuple[pafs.PyFileSystem, QuotaHandler]:
    handler = QuotaHandler(budget)
    return pafs.PyFileSystem(handler), handler
