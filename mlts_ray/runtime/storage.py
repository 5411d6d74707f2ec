"""Where runs are stored: a local path or any pyarrow filesystem URI (``s3://bucket/runs``,
``gs://...``, ``file:///...``), so a cluster run can write where its user reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from mlts_ray.errors import RunError


@dataclass(frozen=True, slots=True)
class Location:
    fs: pafs.FileSystem
    path: str
    scheme: str = ""  # "" for plain local paths

    def __truediv__(self, part: str) -> Location:
        return Location(self.fs, f"{self.path.rstrip('/')}/{part}", self.scheme)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}" if self.scheme else self.path

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def exists(self) -> bool:
        return self.fs.get_file_info(self.path).type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self.fs.get_file_info(self.path).type == pafs.FileType.File

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return stream.read()

    def write_atomic(self, data: bytes) -> None:
        """Write to a temporary name, then move into place: readers see whole files only."""
        parent, _, name = self.path.rpartition("/")
        tmp = f"{parent}/.{name}.tmp"
        with self.fs.open_output_stream(tmp) as stream:
            stream.write(data)
        self.fs.move(tmp, self.path)

    def files(self, suffix: str) -> list[str]:
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        return sorted(
            info.path for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.endswith(suffix)
            and not info.base_name.startswith(".")
        )


def locate(where: str | Path) -> Location:
    text = str(where)
    if "://" not in text:
        return Location(pafs.LocalFileSystem(), str(Path(text).absolute()))
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... by scheme
        raise RunError(text, f"not a usable filesystem URI: {err}") from None
    return Location(fs, path, text.split("://", 1)[0])
