"""phi's targets: precision, recall against the oracle and RMSE / sqrt(CRLB), each checked."""

import numpy as np
import pandas as pd


def phi_targets(
    localization: pd.DataFrame, sweep: pd.DataFrame, targets: dict, split: str
) -> pd.DataFrame:
    """Check phi's targets: precision and recall gap to the oracle on the dense split (one-to-one
    matching) and RMSE / sqrt(CRLB) at the configured photon counts. One row per target."""
    dense = localization[
        (localization["split"] == split) & (localization["convention"] == "one_to_one")
    ]
    phi, oracle = (dense[dense["source"] == s].iloc[0] for s in ("phi", "oracle"))
    rows = [
        ("precision", f"{split}: phi precision", phi["precision"], ">=", targets["min_precision"]),
        (
            "recall_gap",
            f"{split}: oracle recall ({oracle['recall']:.3f}) - phi recall",
            oracle["recall"] - phi["recall"],
            "<=",
            targets["max_recall_gap"],
        ),
    ]
    by_photons = sweep.set_index("photons")
    for photons in targets["photons"]:
        value = by_photons.loc[photons, "rmse_over_crlb"]
        rows.append(
            (
                "rmse_over_crlb",
                f"isolated, i0 = {photons}: lateral RMSE / sqrt(CRLB)",
                value,
                "<=",
                targets["max_rmse_over_crlb"],
            )
        )
    frame = pd.DataFrame(
        rows, columns=["target", "description", "measured", "relation", "threshold"]
    )
    ok = np.where(
        frame["relation"] == ">=",
        frame["measured"] >= frame["threshold"],
        frame["measured"] <= frame["threshold"],
    )
    return frame.assign(passed=ok & np.isfinite(frame["measured"].to_numpy(dtype=float)))
