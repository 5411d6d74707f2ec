"""Where runs are stored: a local path or any pyarrow filesystem URI (``s3://bucket/runs``,
``gs://...``, ``file:///...``), so a cluster run can write where its user reads."""

from __future__ import annotations

import os
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

    @property
    def is_local(self) -> bool:
        """A path on this machine's filesystem (plain path or ``file://``)."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def write_atomic(self, data: bytes) -> None:
        """Write to a temporary name, then move into place: readers see whole files only. A
        failed write (a full disk) removes its temporary, which also gives its space back."""
        parent, _, name = self.path.rpartition("/")
        tmp = f"{parent}/.{name}.tmp"
        try:
            with self.fs.open_output_stream(tmp) as stream:
                stream.write(data)
            self.fs.move(tmp, self.path)
        except BaseException:
            try:
                self.fs.delete_file(tmp)
            except Exception:  # never written, or already gone: nothing to clean
                pass
            raise

    def make_dir_exclusive(self) -> bool:
        """Create this directory if nothing is there; False if something already is. Atomic
        on a local filesystem (two processes never both get True); object stores have no such
        primitive, so there it is check-then-create."""
        if self.is_local:
            try:
                os.mkdir(self.path)
            except FileExistsError:
                return False
            return True
        if self.exists():
            return False
        self.fs.create_dir(self.path, recursive=False)
        return True

    def delete_temporaries(self) -> None:
        """Remove ``.*.tmp`` files a killed writer left in this directory."""
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and info.base_name.startswith(".") \
                    and info.base_name.endswith(".tmp"):
                self.fs.delete_file(info.path)

    def tree(self) -> list[tuple[str, bool]]:
        """Everything below this folder, as (path relative to it, is a folder), sorted."""
        selector = pafs.FileSelector(self.path, recursive=True, allow_not_found=True)
        base = self.path.rstrip("/") + "/"
        return sorted((info.path[len(base):], info.type == pafs.FileType.Directory)
                      for info in self.fs.get_file_info(selector))

    def files(self, suffix: str) -> list[str]:
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        return sorted(
            info.path for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.endswith(suffix)
            and not info.base_name.startswith(".")
        )


def locate(where: str | Path | Location) -> Location:
    if isinstance(where, Location):
        return where
    text = str(where)
    if not text.strip():  # an empty --out would put the run in the current directory
        raise RunError("--out", "is empty: name a directory or a filesystem URI")
    if "://" not in text:
        return Location(pafs.LocalFileSystem(), str(Path(text).absolute()))
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... by scheme
        raise RunError(text, f"not a usable filesystem URI: {err}") from None
    return Location(fs, path, text.split("://", 1)[0])


LOCK = ".lock"
RESERVE = 64 * 1024  # a manifest with its config is a few KiB; room for it and its temporary


class RunLock:
    """One writer per run directory: an exclusive ``flock`` on ``<run>/.lock`` held while a
    process writes the run. The kernel drops it when the process dies (even by SIGKILL), so a
    crashed run is never locked out of ``--resume``. The file holds the writer's pid, for the
    message, padded with spaces to ``RESERVE`` bytes while the run is written: the room that
    ``free_reserve`` gives back so that a run that filled its disk can still say so in its
    manifest. Only local filesystems have such locks; on an object store the lock is a no-op
    and one writer per run is the user's to keep."""

    def __init__(self, run_dir: Location) -> None:
        self._fd: int | None = None
        if not run_dir.is_local:
            return
        import fcntl

        path = (run_dir / LOCK).path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunError(str(run_dir), f"is being written by process {holder}: one writer "
                                         "per run (wait for it, or stop it first)") from None
        os.ftruncate(fd, 0)
        pid = str(os.getpid()).encode()
        try:
            os.write(fd, pid.ljust(RESERVE))
        except OSError:  # no room for the reserve: the pid alone, as before
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, pid)
        self._fd = fd
        self._pid = pid

    def free_reserve(self) -> None:
        """Give the reserve back to the filesystem (the pid stays)."""
        if self._fd is not None:
            os.ftruncate(self._fd, len(self._pid))

    def release(self) -> None:
        if self._fd is not None:
            self.free_reserve()
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
