"""What a retrain reads from and writes to the model registry.

The champion, verified against the sha256 the operator recorded before it is unpickled;
version N, written atomically with its metadata, its reference profile and (for a
regressor) its loss model; and, for a rerun of the same reservation, the version an
earlier run already published.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from typing import cast

from modelwatch_monitor import contract
from modelwatch_monitor.check import loss_estimation
from modelwatch_monitor.check.documents import CalibrationDoc, LossModelEntry
from modelwatch_monitor.check.estimation import reference_calibration
from modelwatch_monitor.check.profile import Profile, Roles, build_profile
from modelwatch_monitor.store import compat
from modelwatch_monitor.store.dataio import DataError, require_store
from modelwatch_monitor.store.estimators import Estimator, StoredModel
from modelwatch_monitor.store.registry import (
    IntegrityError,
    Registry,
    RegistryError,
    VersionExistsError,
)
from modelwatch_monitor.train import results
from modelwatch_monitor.train.automl import FitResult
from modelwatch_monitor.train.comparison import Champion, Comparison
from modelwatch_monitor.train.data import Dataset, TrainingSet, fingerprint
from modelwatch_monitor.train.metadata import Label, VersionMetadata
from modelwatch_monitor.train.plan import Plan
from modelwatch_monitor.train.reasons import (
    CHAMPION_HASH_MISMATCH,
    STORE_ERROR,
    VERSION_EXISTS,
    RetrainError,
)

log = logging.getLogger(__name__)

# The fewest holdout rows the version's reference profile is built from (else: training rows).
PROFILE_MIN_ROWS = 200


def open_registry(plan: Plan) -> Registry:
    """Return the registry of the plan's model, once its store is known to be usable."""
    try:
        require_store(plan.store)
    except DataError as exc:
        raise RetrainError(STORE_ERROR, str(exc)) from None
    return Registry(plan.store, plan.model)


def check_unpublished(registry: Registry, plan: Plan) -> None:
    """Raise ``VersionExists`` when version N is already published (versions are immutable)."""
    try:
        exists = registry.exists(plan.version)
    except OSError as exc:
        raise RetrainError(STORE_ERROR, f"cannot read the store {plan.store}: {exc}") from exc
    if exists:
        raise RetrainError(
            VERSION_EXISTS,
            f"version {plan.version} of {plan.model!r} already exists; versions are immutable",
        )


def load_champion(registry: Registry, plan: Plan) -> Champion:
    """Load the champion (``--champion-version``, else the highest version below N).

    A champion that cannot be loaded is unusable (the challenger then replaces it),
    except one whose artifact is not the one the operator recorded: that stops the retrain.

    Raises
    ------
    RetrainError
        ``ChampionHashMismatch``: the artifact's sha256 differs from ``plan.champion_sha256``
        (the message names both); nothing is compared and nothing is written.
    """
    version = plan.champion_version
    if version is None:
        version = registry.latest(below=plan.version)
    if version is None:
        return Champion()
    try:
        model = registry.load(version, expected_sha256=plan.champion_sha256).model
    except IntegrityError as exc:
        if plan.champion_sha256:
            raise RetrainError(
                CHAMPION_HASH_MISMATCH,
                f"champion v{version}: {exc} (the operator recorded sha256 "
                f"{plan.champion_sha256} for it in status.versions)",
            ) from exc
        log.error("champion v%d is unusable: %s", version, exc)
        return Champion(version=version, problem=str(exc))
    except RegistryError as exc:
        log.error("champion v%d is unusable: %s", version, exc)
        return Champion(version=version, problem=str(exc))
    return Champion(version=version, model=model)


def published_earlier(registry: Registry, plan: Plan) -> results.RetrainOkDoc | None:
    """The result of the run that already published ``plan.version``, from its metadata.

    The operator hands out version numbers and reserves each for one retrain Job, so a
    published version N found by the Job for N was written by an earlier run of that same
    Job: its pod was restarted, or the Job recreated after the operator lost track of it,
    after the write. Training again could only fail on the immutable version; reporting the
    published one keeps the work and the loop going. None without a reservation
    (``plan.reuse_published``) or when the metadata is not one a retrain writes (then the
    version is refused as before).
    """
    if not plan.reuse_published:
        return None
    try:
        meta = registry.metadata(plan.version)
    except Exception as exc:  # unreadable: refuse as before
        log.warning("version %d exists but its metadata is unreadable: %s", plan.version, exc)
        return None
    # Parsed JSON, unchecked: results.published reads it as a metadata.json that may lack fields.
    result = results.published(plan, cast(VersionMetadata, meta), registry.uri(plan.version))
    if result is not None:
        log.info(
            "version %d was already published by an earlier run of this retrain (sha256 %s); "
            "reporting it instead of training again",
            plan.version,
            meta["sha256"],
        )
    return result


def version_metadata(
    plan: Plan, training: TrainingSet, fitted: FitResult, outcome: Comparison
) -> VersionMetadata:
    """Return the metadata stored with version N: schema, scores, decision, provenance."""
    data = training.data
    promotion = outcome.promotion
    classes = fitted.model.classes_
    columns = [*data.features, plan.target]
    return {
        "task": plan.task,
        "target": plan.target,
        "idColumn": plan.id_column,
        "timestampColumn": plan.timestamp_column,
        "predictionColumn": plan.prediction_column,
        "features": [f.to_json() for f in training.schema],
        "classes": None if classes is None else [_json_scalar(c) for c in classes],
        "metric": outcome.metric,
        "greaterIsBetter": outcome.greater_is_better,
        "metrics": {"challenger": outcome.challenger_scores, "champion": outcome.champion_scores},
        "champion": None
        if outcome.champion_version is None
        else {
            "version": outcome.champion_version,
            "score": outcome.champion_score,
            "problem": outcome.champion_problem or None,
        },
        "promote": promotion.promote,
        "reason": promotion.reason,
        "message": promotion.message,
        "minImprovement": plan.min_improvement,
        "flaml": {
            "bestEstimator": fitted.best_estimator,
            "bestConfig": fitted.best_config,
            "bestLoss": fitted.best_loss,
            "trials": fitted.trials,
            "seconds": round(fitted.seconds, 2),
            "timeBudgetSeconds": plan.automl.time_budget,
            "estimators": list(plan.automl.estimators),
            "seed": plan.automl.seed,
            "nJobs": plan.automl.n_jobs,
        },
        "training": {
            "rows": len(training.X_train),
            "fingerprint": fingerprint(data.train, columns),
            **data.training_info,
        },
        "holdout": {
            "rows": len(data.holdout),
            "fingerprint": fingerprint(data.holdout, columns),
            **data.holdout_info,
        },
        "triggerReport": plan.trigger_report or None,
        "libraries": compat.library_versions(),
    }


def publish(
    registry: Registry,
    plan: Plan,
    model: StoredModel,
    metadata: VersionMetadata,
    files: Mapping[str, bytes],
) -> VersionMetadata:
    """Write version N atomically (model, metadata, ``files``); return its metadata as
    written (``metadata`` with the registry's fields: version, sha256, createdAt...).

    Raises
    ------
    RetrainError
        ``VersionExists`` when another run published N first, ``StoreError`` when the
        store refuses the write. Nothing is visible under versions/N then.
    """
    try:
        swept = registry.remove_stale_temps()
        if swept:
            log.info("removed temp folders of crashed retrains: %s", ", ".join(swept))
    except OSError as exc:  # housekeeping only
        log.warning("cannot sweep temp folders: %s", exc)
    try:
        written = registry.publish(plan.version, model, metadata, extra_files=files)
    except VersionExistsError as exc:
        raise RetrainError(VERSION_EXISTS, str(exc)) from exc
    except (OSError, RegistryError) as exc:
        raise RetrainError(STORE_ERROR, f"cannot write version {plan.version}: {exc}") from exc
    return cast(VersionMetadata, written)  # ``metadata``, and the fields VersionMetadata names


def _json_scalar(value: object) -> Label:
    """Return a class label as JSON holds it (a numpy scalar as its Python value)."""
    item = getattr(value, "item", None)
    if callable(item):
        label: Label = item()
        return label
    if isinstance(value, str | int | float):
        return value
    return str(value)  # as json.dumps(default=str) writes it


def version_files(plan: Plan, data: Dataset, model: Estimator) -> dict[str, bytes]:
    """Return the files stored beside the model: its reference profile and loss model.

    Once this version serves, checks compare live data with the data it was trained
    on, not with the original reference: the newest of it, the holdout (the latest rows
    by time), when it holds at least :data:`PROFILE_MIN_ROWS` rows. A retrain starts at
    the first violating check, so its training window still holds some traffic from
    before the change; the newest rows are the new normal that the version's own traffic
    will look like. For a classifier, the profile also carries the calibration of this
    model's probabilities on the holdout (the model is at hand here), for estimated
    performance before labels arrive; for a regressor, the loss model of its error. A
    failure here only loses that refinement: no file, never a failed retrain.
    """
    files: dict[str, bytes] = {}
    newest = len(data.holdout) >= PROFILE_MIN_ROWS
    frame = data.holdout if newest else data.train
    columns = [c for c in [*data.features, plan.target] if c in frame.columns]
    try:
        with tempfile.TemporaryDirectory(prefix="mw-profile-") as tmp:
            path = os.path.join(tmp, "train.parquet")
            frame[columns].to_parquet(path, index=False)
            profile = build_profile(
                path, roles=Roles(target=plan.target), features=data.features, task=plan.task
            )
        profile.source = (
            f"the newest {len(frame)} rows of the training data" if newest else "training data"
        )
        calibration = _holdout_calibration(data, plan, model)
        if calibration is not None:
            profile.performance = {"task": plan.task, "metrics": {}, **(profile.performance or {})}
            profile.performance["calibration"] = calibration
        loss = _holdout_loss_model(data, plan, model, profile)
        if loss is not None:
            payload, entry = loss
            files[loss_estimation.LOSS_MODEL_FILE] = payload
            profile.performance = {"task": plan.task, "metrics": {}, **(profile.performance or {})}
            profile.performance["lossModel"] = entry
        files[contract.PROFILE_FILE] = json.dumps(profile.to_dict(), separators=(",", ":")).encode()
    except Exception as exc:  # never fail a retrain over its profile
        log.warning("could not profile the training data: %s", exc)
        return {}
    return files


def _holdout_loss_model(
    data: Dataset, plan: Plan, model: Estimator | None, profile: Profile
) -> tuple[bytes, LossModelEntry] | None:
    """For a regressor, the loss model of its error fitted on the holdout (features and
    this model's predictions), stored with the version: once it serves, checks estimate
    its error before labels arrive. None for classifiers or a holdout too small."""
    if model is None or plan.task != "regression":
        return None
    features = [f for f in data.features if f in data.holdout.columns]
    categorical = [
        f for f in features if f in profile.columns and profile.columns[f].type == "categorical"
    ]
    try:
        fitted = loss_estimation.fit_loss_model(
            data.holdout[features],
            data.holdout[plan.target].to_numpy(dtype=float),
            model.predict(data.holdout),
            categorical=categorical,
        )
    except (ValueError, TypeError) as exc:
        log.info("no loss model with this version: %s", exc)
        return None
    payload = loss_estimation.dump(fitted)
    folder = contract.version_dir(plan.store, plan.model, plan.version)
    uri = f"{folder}/{loss_estimation.LOSS_MODEL_FILE}"
    entry: LossModelEntry = {
        "uri": uri,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "rows": len(data.holdout),
    }
    return payload, entry


def _holdout_calibration(
    data: Dataset, plan: Plan, model: Estimator | None
) -> CalibrationDoc | None:
    """The calibration of ``model``'s probabilities on the holdout, as the profile
    stores it; None for regression or when the holdout cannot calibrate."""
    if model is None or plan.task != "classification":
        return None
    classes = model.classes_
    if classes is None:
        return None
    proba = model.predict_proba(data.holdout)
    columns = {str(c): proba[:, j] for j, c in enumerate(classes)}
    return reference_calibration(data.holdout[plan.target].to_numpy(), columns)
