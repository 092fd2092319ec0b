"""``modelwatch demo``: a built-in dataset and a traffic generator for the demo loop.

``modelwatch demo data`` writes a reference table; ``modelwatch demo traffic`` sends
prediction requests to a model server and writes the delayed ground truth (labels)
for them into the store, as a labelling pipeline would.

The dataset is a churn-like binary classification problem with six numeric features
and one categorical feature. ``--shift`` moves the means of ``tenure``, ``usage`` and
``support_calls`` (covariate drift, in standard deviations); ``--concept`` changes how
the features relate to the label (concept drift), so a stale model degrades.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import urllib.request
import uuid
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from pydantic import JsonValue

log = logging.getLogger("modelwatch.demo")

NUMERIC = ["tenure", "usage", "support_calls", "monthly_fee", "discount", "age"]
REGIONS = ["north", "south", "east", "west"]
TARGET = "churned"
ID = "customer_id"


def make_frame(
    n: int, *, seed: int = 0, shift: float = 0.0, concept: bool = False, id_prefix: str = "c"
) -> pd.DataFrame:
    """Return ``n`` rows of features, ``churned`` and ``customer_id``.

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int
        Random seed.
    shift : float
        Mean shift, in standard deviations, of ``tenure``, ``usage`` and ``support_calls``.
    concept : bool
        Use the drifted relation between features and label.

    Returns
    -------
    pandas.DataFrame of shape (n, 9)
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(NUMERIC)))
    x[:, :3] += shift
    region = rng.choice(REGIONS, size=n, p=[0.4, 0.3, 0.2, 0.1])
    north = (region == "north").astype(float)
    if concept:
        logit = -1.8 * x[:, 0] + 1.6 * x[:, 3] - 1.2 * x[:, 1] * (north - 0.5) + 0.6
    else:
        logit = 1.5 * x[:, 0] - 1.2 * x[:, 1] + 1.0 * x[:, 2] + 0.8 * north - 0.3
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(x, columns=NUMERIC)
    frame["region"] = pd.Categorical(region, categories=REGIONS).astype(str)
    frame[TARGET] = y
    frame[ID] = [f"{id_prefix}-{i}" for i in range(n)]
    return frame


def _atomic_parquet(frame: pd.DataFrame, path: str) -> None:
    import fsspec

    fs, _, (target,) = fsspec.get_fs_token_paths(path)
    fs.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{os.path.dirname(target)}/.tmp-{uuid.uuid4().hex}.parquet"
    with fs.open(tmp, "wb") as fh:
        frame.to_parquet(fh, index=False)
    fs.mv(tmp, target)


class PredictResponse(TypedDict):
    """The part of the server's ``/predict`` answer the demo reads."""

    predictions: list[JsonValue]


def _post(url: str, records: list[dict[str, JsonValue]], timeout: float) -> PredictResponse:
    body = json.dumps({"records": records}).encode()
    req = urllib.request.Request(
        f"{url.rstrip('/')}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer: PredictResponse = json.loads(resp.read())
    return answer


def send_traffic(
    url: str,
    frame: pd.DataFrame,
    *,
    batch: int = 200,
    timeout: float = 30.0,
    retry_seconds: float = 120.0,
) -> npt.NDArray[np.generic]:
    """POST ``frame`` (without the label) to ``url``/predict in batches; return predictions."""
    import numpy as np

    features = frame.drop(columns=[TARGET])
    predictions: list[JsonValue] = []
    deadline = time.monotonic() + retry_seconds
    for start in range(0, len(features), batch):
        records = json.loads(features.iloc[start : start + batch].to_json(orient="records"))
        while True:
            try:
                predictions.extend(_post(url, records, timeout)["predictions"])
                break
            except OSError as exc:  # the server may still be starting
                if time.monotonic() > deadline:
                    raise
                log.info("server not answering yet (%s); retrying", exc)
                time.sleep(2)
        if (start // batch) % 10 == 0:
            log.info("sent %d/%d rows", min(start + batch, len(features)), len(features))
    return np.asarray(predictions)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    data = sub.add_parser("data", help="write the built-in dataset")
    data.add_argument("--output", required=True, help="Parquet file path or URI")
    data.add_argument("--rows", type=int, default=4000)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--shift", type=float, default=0.0)
    data.add_argument("--concept", action="store_true")
    traffic = sub.add_parser("traffic", help="send prediction traffic and write its labels")
    traffic.add_argument("--url", default=os.environ.get("MODEL_SERVER_URL", ""))
    traffic.add_argument("--rows", type=int, default=2000)
    traffic.add_argument("--batch", type=int, default=200)
    traffic.add_argument("--seed", type=int, default=1)
    traffic.add_argument("--shift", type=float, default=0.0)
    traffic.add_argument("--concept", action="store_true")
    traffic.add_argument("--labels-out", help="folder (path or URI) for the ground-truth Parquet")


def run(args: argparse.Namespace) -> int:
    if args.demo_command == "data":
        frame = make_frame(args.rows, seed=args.seed, shift=args.shift, concept=args.concept)
        _atomic_parquet(frame, args.output)
        print(json.dumps({"rows": len(frame), "output": args.output}))
        return 0
    url = args.url
    if not url:
        host = os.environ.get("MODEL_SERVER_SERVICE_HOST")
        port = os.environ.get("MODEL_SERVER_SERVICE_PORT", "80")
        if not host:
            log.error(
                "no --url, MODEL_SERVER_URL or MODEL_SERVER_SERVICE_HOST: where is the server?"
            )
            return 2
        url = f"http://{host}:{port}"
    prefix = f"t{args.seed}-{uuid.uuid4().hex[:6]}"
    frame = make_frame(
        args.rows, seed=args.seed, shift=args.shift, concept=args.concept, id_prefix=prefix
    )
    predictions = send_traffic(url, frame, batch=args.batch)
    accuracy = float((predictions.astype(str) == frame[TARGET].astype(str).to_numpy()).mean())
    if args.labels_out:
        _atomic_parquet(
            frame[[ID, TARGET]], f"{args.labels_out.rstrip('/')}/labels-{prefix}.parquet"
        )
    print(json.dumps({"rows": len(frame), "url": url, "accuracy": round(accuracy, 4)}))
    return 0
