"""The versioned model registry: ``<store>/<model>/versions/<N>/{model.joblib, metadata.json}``.

Rules
-----
- A version is **committed** when its ``metadata.json`` exists. Only committed versions
  are listed or loaded.
- On a local filesystem a version is written into a sibling temp folder
  ``versions/.tmp-<N>-<uuid>`` and renamed to ``versions/<N>`` in one ``rename(2)``, so
  a crashed or killed writer leaves only a temp folder, which listing ignores. On object
  stores (no rename), the files are uploaded under that temporary key, copied into
  ``versions/<N>/``, and ``metadata.json`` is written last, create-only, as the marker
  that publishes the version: readers (:meth:`Registry.versions`, ``latest``, ``exists``,
  ``metadata``, ``load``) see only versions whose marker exists.
- Versions are immutable: publishing an existing version raises
  :class:`VersionExistsError`; files are made read-only.
- Writers of different versions never touch the same paths, so concurrent retrains do
  not interfere. The operator hands out version numbers, so two writers never race for
  one.
- ``model.joblib`` is a pickle: :meth:`Registry.load` hashes the bytes it read and
  compares them with the expected sha256 *before* unpickling them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelwatch_monitor import contract
from modelwatch_monitor.store import compat
from modelwatch_monitor.store.estimators import StoredModel

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
_VERSION_RE = re.compile(r"^[1-9][0-9]*$")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked; the message says why."""


class VersionNotFoundError(RegistryError):
    """The version does not exist (or was never committed)."""


class VersionExistsError(RegistryError):
    """The version is already committed; versions are immutable."""


class IncompatibleLibrariesError(RegistryError):
    """The version was trained with library releases whose pickles this process cannot load."""


class IntegrityError(RegistryError):
    """The artifact's sha256 differs from the expected one; it is not loaded."""


@dataclass(frozen=True)
class LoadedVersion:
    """A model loaded from the registry after its hash was verified.

    ``model`` is what ``model.joblib`` unpickled to: a model a retrain published.
    ``metadata`` is ``metadata.json`` as parsed, unvalidated.
    """

    version: int
    model: StoredModel
    metadata: dict[str, Any]
    sha256: str


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class Registry:
    """The versions of one model in one store.

    Parameters
    ----------
    store : str
        A local path or an fsspec URI (``file://``, ``s3://``, ``memory://``...).
    model : str
        The model name (a DNS-1123 label).
    """

    def __init__(self, store: str, model: str) -> None:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.store = store
        self.model = model
        self.root = contract.versions_dir(store, model)
        fs, path = fsspec.core.url_to_fs(self.root)
        self._fs = fs
        self._root_path: str = path.rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)

    # -- paths ---------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join([self._root_path, *parts])

    def uri(self, version: int) -> str:
        """Return the URI of a version's folder."""
        return contract.version_dir(self.store, self.model, version)

    # -- reading -------------------------------------------------------------

    def _refresh(self) -> None:
        """Forget cached listings, so another process's newly published version shows."""
        if not self.is_local:
            self._fs.invalidate_cache(self._root_path)
            for key in [k for k in list(self._fs.dircache) if k.startswith(self._root_path)]:
                self._fs.dircache.pop(key, None)

    def versions(self) -> list[int]:
        """Return the committed versions, ascending. Temp folders are ignored."""
        self._refresh()
        try:
            entries = self._fs.ls(self._root_path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            name = str(entry).rstrip("/").rsplit("/", 1)[-1]
            if _VERSION_RE.match(name) and self._fs.exists(
                self._path(name, contract.METADATA_FILE)
            ):
                found.append(int(name))
        return sorted(found)

    def latest(self, *, below: int | None = None) -> int | None:
        """Return the highest committed version (below ``below`` if given), or None."""
        candidates = [v for v in self.versions() if below is None or v < below]
        return candidates[-1] if candidates else None

    def exists(self, version: int) -> bool:
        """Return True when ``version`` is committed."""
        self._refresh()
        return bool(self._fs.exists(self._path(str(int(version)), contract.METADATA_FILE)))

    def metadata(self, version: int) -> dict[str, Any]:
        """Return the ``metadata.json`` of a committed version."""
        path = self._path(str(int(version)), contract.METADATA_FILE)
        try:
            raw = self._fs.cat_file(path)
        except FileNotFoundError:
            raise VersionNotFoundError(
                f"model {self.model!r} has no version {version} in {self.store}"
            ) from None
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{self.uri(version)}/metadata.json is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise RegistryError(f"{self.uri(version)}/metadata.json is not an object")
        return doc

    def load(self, version: int, *, expected_sha256: str | None = None) -> LoadedVersion:
        """Verify and unpickle a version.

        Parameters
        ----------
        version : int
        expected_sha256 : str, optional
            The hash the caller trusts (the server gets it from the Deployment env, which
            the operator took from the retrain result). Defaults to the hash recorded in
            ``metadata.json``. Both must match when both are known.

        Returns
        -------
        LoadedVersion

        Raises
        ------
        VersionNotFoundError, IntegrityError, RegistryError
        """
        import joblib

        meta = self.metadata(version)
        recorded = str(meta.get("sha256") or "")
        try:
            data = self._fs.cat_file(self._path(str(int(version)), contract.MODEL_FILE))
        except FileNotFoundError:
            raise VersionNotFoundError(
                f"version {version} of {self.model!r} has metadata but no {contract.MODEL_FILE}"
            ) from None
        actual = sha256_bytes(data)
        for source, expected in (("expected", expected_sha256), ("metadata", recorded)):
            if expected and actual != expected.lower():
                raise IntegrityError(
                    f"sha256 mismatch for {self.uri(version)}/{contract.MODEL_FILE}: "
                    f"{source} {expected}, artifact {actual}; refusing to load it"
                )
        if not recorded and not expected_sha256:
            raise IntegrityError(
                f"{self.uri(version)} records no sha256 and none was given; refusing to load"
            )
        compatibility = compat.compare(meta.get("libraries"), compat.library_versions())
        if not compatibility.ok:
            raise IncompatibleLibrariesError(
                f"refusing to unpickle {self.uri(version)}/{contract.MODEL_FILE}: "
                + "; ".join(compatibility.refused)
            )
        for warning in compatibility.warnings:
            log.warning("%s: %s", self.uri(version), warning)
        try:
            model = joblib.load(io.BytesIO(data))
        except Exception as exc:  # unpickling can raise anything
            raise RegistryError(f"cannot unpickle {self.uri(version)}: {exc}") from exc
        return LoadedVersion(version=int(version), model=model, metadata=meta, sha256=actual)

    # -- writing -------------------------------------------------------------

    def publish(
        self,
        version: int,
        model: StoredModel,
        metadata: Mapping[str, object],
        *,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> dict[str, object]:
        """Write a new version atomically and return its final metadata.

        Parameters
        ----------
        version : int
            The version number (>= 1), handed out by the operator.
        model : StoredModel
            Pickled with joblib into ``model.joblib``.
        metadata : mapping
            JSON-serialisable; ``version``, ``sha256`` and ``createdAt`` are filled in.
        extra_files : mapping of file name to bytes, optional
            More immutable files of the version (e.g. ``profile.json``), committed with it;
            their sha256 are recorded in ``metadata["files"]``.

        Returns
        -------
        dict
            The metadata as written.

        Raises
        ------
        VersionExistsError
            ``version`` is already committed.
        """
        import joblib

        version = int(version)
        if version < 1:
            raise RegistryError(f"versions start at 1; got {version}")
        if self.exists(version):
            raise VersionExistsError(
                f"version {version} of {self.model!r} already exists in {self.store}; "
                "versions are immutable"
            )
        buf = io.BytesIO()
        joblib.dump(model, buf, compress=3)
        data = buf.getvalue()
        meta = dict(metadata)
        meta.update(
            version=version,
            sha256=sha256_bytes(data),
            createdAt=meta.get("createdAt") or _utcnow(),
            model=self.model,
            modelBytes=len(data),
        )
        extras = dict(extra_files or {})
        if extras:
            meta["files"] = {name: sha256_bytes(payload) for name, payload in extras.items()}
        text = json.dumps(meta, indent=2, sort_keys=True, default=str).encode()
        if self.is_local:
            self._publish_local(version, data, text, extras)
        else:
            self._publish_object_store(version, data, text, extras)
        log.info(
            "registry: wrote version %d of %s (sha256 %s)", version, self.model, meta["sha256"]
        )
        return meta

    def _publish_local(
        self, version: int, data: bytes, text: bytes, extras: Mapping[str, bytes]
    ) -> None:
        os.makedirs(self._root_path, exist_ok=True)
        tmp = self._path(f"{TEMP_PREFIX}{version}-{uuid.uuid4().hex}")
        final = self._path(str(version))
        os.mkdir(tmp)
        try:
            files = [(contract.MODEL_FILE, data), *extras.items(), (contract.METADATA_FILE, text)]
            for name, payload in files:
                path = os.path.join(tmp, name)
                with open(path, "wb") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(path, 0o444)
            if os.path.lexists(final):
                raise VersionExistsError(
                    f"version {version} of {self.model!r} already exists in {self.store}; "
                    "versions are immutable"
                )
            # rename(2) of a folder onto a missing name is atomic; onto a non-empty
            # folder it fails, so a concurrent writer of the same number cannot win twice.
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(self._root_path)

    def _publish_object_store(
        self, version: int, data: bytes, text: bytes, extras: Mapping[str, bytes]
    ) -> None:
        """Publish on an object store: stage, copy into place, then the marker.

        1. Upload every file under a temporary key ``versions/.tmp-<N>-<uuid>/`` (the
           slow part; a writer killed here leaves only that prefix).
        2. Copy each staged object into ``versions/<N>/`` (server-side; an object store
           makes each object visible whole or not at all).
        3. Write ``metadata.json`` last, create-only (``If-None-Match: *``): it is the
           marker that publishes the version, so two writers of one number cannot both
           publish it, and a writer killed before it leaves no visible version (a retry
           overwrites the unpublished objects). ``metadata.json`` records every file's
           sha256, which :meth:`load` checks.
        4. Remove the staging prefix (best effort; :meth:`remove_stale_temps` sweeps it).
        """
        base = self._path(str(version))
        staging = self._path(f"{TEMP_PREFIX}{version}-{uuid.uuid4().hex}")
        files = [(contract.MODEL_FILE, data), *extras.items()]
        try:
            for name, payload in files:
                self._fs.pipe_file(f"{staging}/{name}", payload)
            if self.exists(version):
                raise VersionExistsError(
                    f"version {version} of {self.model!r} was published by another writer"
                )
            for name, _ in files:
                self._fs.copy(f"{staging}/{name}", f"{base}/{name}")
            self._write_marker(version, text)
        finally:
            try:
                self._fs.rm(staging, recursive=True)
            except (FileNotFoundError, OSError) as exc:
                log.warning("registry: cannot remove the staging prefix %s: %s", staging, exc)

    def _write_marker(self, version: int, text: bytes) -> None:
        """Write ``versions/<N>/metadata.json`` only if absent: the act of publishing."""
        path = self._path(str(version), contract.METADATA_FILE)
        try:
            self._fs.pipe_file(path, text, mode="create")
        except OSError:
            # s3fs reports the server's 412 (the marker exists) as a generic OSError, a
            # filesystem as FileExistsError: either way, ask whether the marker is there.
            self._refresh()
            if self._fs.exists(path):
                raise VersionExistsError(
                    f"version {version} of {self.model!r} was published by another writer"
                ) from None
            raise

    def remove_stale_temps(self, *, older_than_seconds: float = 3600.0) -> list[str]:
        """Delete temp folders (staging prefixes) left by crashed writers; return their names.

        Only folders older than ``older_than_seconds`` are touched, so a writer still at
        work keeps its folder. On an object store a prefix's age is its newest object's.
        """
        if not self.is_local:
            return self._remove_stale_staging(older_than_seconds)
        if not os.path.isdir(self._root_path):
            return []
        removed = []
        now = time.time()
        for name in os.listdir(self._root_path):
            path = os.path.join(self._root_path, name)
            if name.startswith(TEMP_PREFIX) and now - os.path.getmtime(path) > older_than_seconds:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(name)
        return removed

    def _remove_stale_staging(self, older_than_seconds: float) -> list[str]:
        self._fs.invalidate_cache(self._root_path)
        try:
            entries = self._fs.ls(self._root_path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        removed = []
        now = time.time()
        for entry in entries:
            name = str(entry).rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(TEMP_PREFIX):
                continue
            prefix = self._path(name)
            stamps = [_modified(info) for info in self._fs.find(prefix, detail=True).values()]
            # No object under it: an empty prefix some servers list for a while after
            # its objects were deleted; there is nothing to sweep.
            if not stamps or now - max(stamps) <= older_than_seconds:
                continue
            self._fs.rm(prefix, recursive=True)
            removed.append(name)
        return sorted(removed)


def _modified(info: Mapping[str, object]) -> float:
    """Return an object's modification time (epoch seconds) from an fsspec info dict."""
    stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
    if stamp is None:
        return time.time()
    if isinstance(stamp, int | float):
        return float(stamp)
    if isinstance(stamp, dt.datetime):  # s3fs's LastModified
        return stamp.timestamp()
    raise TypeError(f"an fsspec modification time must be a number or a datetime, got {stamp!r}")


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
