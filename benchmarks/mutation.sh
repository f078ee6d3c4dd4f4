#!/usr/bin/env bash
# Mutation testing of the metrics, the regression gate and the timers (mutmut 3; not part of CI).
#   pip install mutmut && benchmarks/mutation.sh [MUTANT_GLOB ...]
# Settings are in pyproject.toml [tool.mutmut] (the modules, and the fast tests each mutant runs).
# Without arguments: the modules whose tests run in seconds. lenet.py (its tests train or load the
# classifier), evaluate.py, features.py, sample_sets.py, stats_cache.py (disk and dataset I/O),
# inception*.py and resize.py (their tests are outside the fast selection) are left out; name them
# to include them, e.g. 'gmbench.metrics.evaluate*'. Work folder: mutants/ (git-ignored).
# Prints killed / survived / untested per module; `mutmut results` lists the survivors and
# `mutmut show NAME` shows one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  set -- 'gmbench.bench.timing*' 'gmbench.metrics.fid*' 'gmbench.metrics.kid*' 'gmbench.metrics.prdc*' \
         'gmbench.metrics.inception_score*' 'gmbench.metrics.classifier_scores*' 'gmbench.report.compare*'
fi
# mutmut imports the mutated copy in mutants/: a PYTHONPATH naming this checkout would shadow it.
env -u PYTHONPATH nice -n 10 mutmut run --max-children "${MUTMUT_CHILDREN:-1}" "$@" | tail -n 3
python - "$@" <<'PY'  # the Python mutmut is installed in
import fnmatch, json, pathlib, sys
from collections import Counter

from mutmut.stats import status_by_exit_code

counts: dict[str, Counter] = {}
for meta in pathlib.Path("mutants").rglob("*.py.meta"):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if any(fnmatch.fnmatch(name, glob) for glob in sys.argv[1:]):
            counts.setdefault(name.split(".x_")[0].split(".xǁ")[0], Counter())[status_by_exit_code[code]] += 1
for module, c in sorted(counts.items()):
    tested = c["killed"] + c["survived"]
    rate = f"{c['killed'] / tested:.0%}" if tested else "-"
    print(f"{module:38s} kill rate {rate:>4s}  " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())))
PY
