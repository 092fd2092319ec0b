"""The reference a check compares the window with, and what it needs before it reads.

The reference profile is given (a profile JSON), reused from the store, or computed once
from the raw reference and saved there. After a promotion the reference moves with the
model: the window is compared with the training data of the version that serves.
"""

from __future__ import annotations

import logging
import uuid

from modelwatch_monitor import contract
from modelwatch_monitor.check import loss_estimation
from modelwatch_monitor.check.profile import Profile, build_profile, is_profile_uri
from modelwatch_monitor.check.settings import CheckSettings, ConfigError
from modelwatch_monitor.store.dataio import DataError, open_source, require_store

log = logging.getLogger(__name__)


def load_reference(settings: CheckSettings) -> Profile:
    """The reference profile: given, reused from the store, or computed and saved."""
    ref = settings.reference
    if ref and is_profile_uri(ref):
        return Profile.load(ref)
    path = settings.profile_path
    if path:
        try:
            profile = Profile.load(path)
        except DataError:
            profile = None
        # Reuse it only if it was made with the same roles: a profile computed with a
        # wrong target would otherwise keep the real target column as a feature.
        if (
            profile is not None
            and (not ref or profile.source in ("", ref))
            and (not ref or profile.roles.target == settings.roles.target)
        ):
            log.info("reusing the reference profile %s", path)
            return profile
    if not ref:
        raise ConfigError(
            "no reference: set spec.data.reference.uri (or --reference), "
            "or store a profile at " + (path or "the store")
        )
    log.info("computing the reference profile of %s", ref)
    profile = build_profile(
        ref,
        roles=settings.roles,
        features=settings.features,
        overrides=settings.overrides,
        task=settings.task,
        mode=settings.mode,
    )
    _attach_loss_model(settings, profile, ref, path)
    if path:
        profile.save(path)
    return profile


def _attach_loss_model(
    settings: CheckSettings, profile: Profile, reference: str, path: str | None
) -> None:
    """A regression reference trains the loss model of estimated error, saved beside the
    profile (in memory for a check outside the store)."""
    if not settings.estimate or (profile.performance or {}).get("task") != "regression":
        return
    folder = path.rsplit("/", 1)[0] if path and "/" in path else None
    uri = (
        f"{folder}/{loss_estimation.LOSS_MODEL_FILE}"
        if folder
        else f"memory://modelwatch/{uuid.uuid4().hex}/{loss_estimation.LOSS_MODEL_FILE}"
    )
    loss_estimation.attach(
        profile,
        open_source(reference),
        target=settings.roles.target,
        prediction=settings.roles.prediction,
        uri=uri,
    )


def prepare_check(settings: CheckSettings) -> tuple[Profile, list[str]]:
    """Check the store and the labels, load the reference; return it and the features.

    Raises
    ------
    DataError, ConfigError
        When the check cannot run.
    """
    if settings.store:
        require_store(settings.store)
    require_labels(settings)
    profile = load_reference(settings)
    features = settings.features or profile.features
    missing_ref = [f for f in features if f not in profile.columns]
    if missing_ref:
        raise DataError(f"feature column {missing_ref[0]!r} is not in the reference profile")
    return profile, features


def require_labels(settings: CheckSettings) -> None:
    """Raise DataError when the labels lack the target or the id column, naming the spec
    field and the columns the labels do have."""
    target = settings.roles.target
    if not settings.labels or not target:
        return
    labels = open_source(settings.labels)
    have = ", ".join(map(repr, labels.columns))
    if target not in labels.columns:
        raise DataError(
            f"the target column {target!r} (spec.model.target) is not in the labels "
            f"{settings.labels!r}; their columns: {have}"
        )
    id_col = settings.labels_id_column
    if id_col and id_col not in labels.columns:
        raise DataError(
            f"the id column {id_col!r} (spec.data.labels.idColumn, default spec.model.idColumn)"
            f" is not in the labels {settings.labels!r}; their columns: {have}"
        )


def serving_version_profile(settings: CheckSettings, version: int | None) -> Profile | None:
    """The training profile of the version that served most of the window, if any.

    After a promotion the reference moves with the model: live data is compared with
    the data the serving version was trained on (``versions/N/profile.json``), so a
    retrain on the new normal is not flagged again at the next check. Without a
    ``model_version`` column (data not logged by the model server), a stored profile,
    or a store, the configured reference stays.
    """
    if version is None or not settings.store or not settings.model:
        return None
    path = contract.version_profile_path(settings.store, settings.model, version)
    try:
        profile = Profile.load(path)
    except (DataError, OSError):
        return None  # trained before profiles were stored, or not by a retrain Job
    log.info("comparing with the training data of version %d (%s)", version, path)
    profile.source = f"training data of version {version}"
    return profile


def follow_serving(
    settings: CheckSettings, profile: Profile, features: list[str], version: int | None
) -> tuple[Profile, list[str]]:
    """The profile and features to judge ``version`` with: its training profile when the
    store has one (the reference moves with the model), else the reference."""
    followed = serving_version_profile(settings, version)
    if followed is None:
        return profile, features
    return followed, settings.features or followed.features
