"""Adapters in MLflow's model registry: each fine-tune registers a version under its name; this finds them again.

`resolve(name, version)` is the resolver `local/<base>+adapter:<name>[@<version>]` asks (registered with the local
provider when this module loads): the version's adapter folder is downloaded once into `<home>/adapters/<name>/v<N>`
(a version's files never change) and that folder is what the provider loads. "Latest" is asked of MLflow at most
every LATEST_TTL_S per name, and forgotten at once when this process registers a new version.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config import settings
from workbench.errors import ModelError, StoreError
from workbench.providers.local.adapters import set_adapter_resolver
from workbench.secrets import redact
from workbench.tracking.backend import current_uri, ensure_mlflow

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["resolve", "client", "adapter_folder", "latest_version", "forget_latest", "adapters", "LATEST_TTL_S",
           "ADAPTER_ARTIFACT"]

LATEST_TTL_S = 5.0
ADAPTER_ARTIFACT = "adapter"
_lock = threading.Lock()
_latest: dict[tuple[str, str], tuple[float, str | None]] = {}  # (uri, name) -> (when asked, version)


def client() -> Any:
    """An MlflowClient on the current tracking and registry URI."""
    mlflow = ensure_mlflow()  # first: it serializes MLflow's first import
    uri = current_uri()
    return mlflow.MlflowClient(uri, registry_uri=uri)


def _versions(name: str) -> list[Any]:
    try:
        return list(client().search_model_versions(f"name='{name}'"))
    except Exception as exc:
        raise StoreError(f"listing versions of adapter {name!r} failed: {redact(str(exc))[:300]}") from exc


def latest_version(name: str) -> str | None:
    key = (current_uri(), name)
    with _lock:
        found = _latest.get(key)
    if found is not None and time.monotonic() - found[0] < LATEST_TTL_S:
        return found[1]
    versions = _versions(name)
    latest = str(max(int(v.version) for v in versions)) if versions else None
    with _lock:
        _latest[key] = (time.monotonic(), latest)
    return latest


def forget_latest(name: str) -> None:
    with _lock:
        for key in [k for k in _latest if k[1] == name]:
            _latest.pop(key, None)


def adapter_folder(name: str, version: str) -> Path:
    """The local copy of a registered version's adapter folder (downloaded on first use)."""
    target = settings().home / "adapters" / name / f"v{version}"
    if (target / "adapter_config.json").is_file():
        return target
    try:
        found = client().get_model_version(name, version)
    except Exception as exc:
        raise ModelError(f"adapter {name!r} has no version {version!r} in the MLflow registry "
                         f"({redact(str(exc)).splitlines()[0][:200]}); list them with workbench.finetune.adapters()"
                         ) from None
    import mlflow.artifacts

    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in a cell
    try:
        staging.mkdir(parents=True)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=found.source, dst_path=str(staging),
                                                         tracking_uri=current_uri()))
        if not (local / "adapter_config.json").is_file():
            raise ModelError(f"adapter {name!r} v{version}: {found.source} holds no adapter_config.json")
        if target.exists():  # another thread finished first: keep theirs
            return target
        os.replace(local, target)
    except ModelError:
        raise
    except Exception as exc:
        raise StoreError(f"downloading adapter {name!r} v{version} from {found.source} failed: "
                         f"{redact(str(exc))[:300]}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve(name: str, version: str | None) -> Path | None:
    """The adapter folder for `name` at `version` (None: the latest); None when no such registered model exists."""
    chosen = version or latest_version(name)
    if chosen is None:
        return None
    if not chosen.isdigit():
        raise ModelError(f"adapter version {chosen!r} of {name!r} is not a number: write e.g. "
                         f"local/smollm2+adapter:{name}@1 (or leave the version out for the latest)")
    return adapter_folder(name, chosen)


def adapters() -> pd.DataFrame:
    """Every registered adapter version: name, version, base, method, run id, created."""
    import pandas as pd

    try:
        found = list(client().search_model_versions("tags.`workbench.kind` = 'adapter'"))
    except Exception as exc:
        raise StoreError(f"listing adapters failed: {redact(str(exc))[:300]}") from exc
    rows = [{"name": v.name, "version": int(v.version), "base": (v.tags or {}).get("workbench.base"),
             "method": (v.tags or {}).get("workbench.method"), "model": (v.tags or {}).get("workbench.model"),
             "run_id": v.run_id, "created": pd.to_datetime(v.creation_timestamp, unit="ms")} for v in found]
    frame = pd.DataFrame(rows, columns=["name", "version", "base", "method", "model", "run_id", "created"])
    return frame.sort_values(["name", "version"], ignore_index=True)


set_adapter_resolver(resolve, name="finetune")
