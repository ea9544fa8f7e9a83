"""The sequential rule's error rates and seeds on simulated seeds: the table in docs/verdicts.md.

For each design (the looks 3, 8, 16 under Pocock- and O'Brien-Fleming-type spending, and fixed 3
and 16 seeds for comparison) and each true effect (in units of the seed-to-seed spread, margin
0.2): the share of each verdict and the mean seeds per arm; beside it the analytic power of the
fixed designs (statsmodels). Synthetic data: no machine enters the numbers.

    python bench/sequential_calibration.py [--reps 4000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from statsmodels.stats.power import TTestPower  # noqa: E402

from suite.core import sequential  # noqa: E402

DESIGNS = {"looks 3/8/16, Pocock": ((3, 8, 16), "pocock"), "looks 3/8/16, O'Brien-Fleming": ((3, 8, 16), "obrien_fleming"),
           "fixed 3": ((3,), "pocock"), "fixed 16": ((16,), "pocock")}
# (test, scale, true effect, margin, what the rate measures)
CASES = [("superior", "continuous", 0.0, 0.2, "false decisions (supported or contradicted) with no effect"),
         ("superior", "continuous", 0.5, 0.2, "supported, effect 0.5 sd"),
         ("superior", "continuous", 1.0, 0.2, "supported, effect 1 sd"),
         ("superior", "continuous", 2.0, 0.2, "supported, effect 2 sd"),
         ("equivalent", "continuous", 0.5, 0.5, "false equivalence, effect on the margin"),
         ("equivalent", "continuous", 0.0, 1.0, "equivalence found, effect 0, margin 1 sd"),
         ("superior", "binary", 0.0, 0.0, "false decisions of the exact sign test, no effect")]


def rate(result: dict, case: tuple) -> float:
    test, _, effect, _, _ = case
    if test == "equivalent":
        return result["supported"]
    return result["supported"] + result["contradicted"] if effect == 0 else result["supported"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000)
    args = parser.parse_args()
    print(f"{args.reps} simulated claims per cell; rate (mean seeds per arm)\n")
    print("| case | " + " | ".join(DESIGNS) + " | analytic, fixed 16 |")
    print("|---" * (len(DESIGNS) + 2) + "|")
    for i, case in enumerate(CASES):
        test, scale, effect, margin, words = case
        cells = []
        for seeds, spending in DESIGNS.values():
            looks = sequential.looks_for(seeds, spending)
            result = sequential.simulate(looks, effect, margin, test, scale, args.reps, seed=i)
            cells.append(f"{rate(result, case):.3f} ({result['mean_seeds']:.1f})")
        analytic = (f"{TTestPower().power(effect_size=effect, nobs=16, alpha=0.05):.3f}"
                    if test == "superior" and scale == "continuous" else "")
        print(f"| {words} | " + " | ".join(cells) + f" | {analytic} |")


if __name__ == "__main__":
    main()
