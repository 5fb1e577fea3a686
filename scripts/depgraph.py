"""Print which app imports which (product modules only, function-level imports included), and any cycle.

    .venv/bin/python scripts/depgraph.py   # from the repository root

The layers contract in pyproject.toml ([tool.importlinter]) is what CI enforces; this shows the picture.
"""

import sys
from collections import Counter
from pathlib import Path

import grimp

ORDER = ["layra", "accounts", "embeddings", "knowledge", "chat", "workflows", "operations"]


def main() -> int:
    root = Path.cwd()  # run from the repository root
    sys.path.insert(0, str(root))
    apps = [a for a in ORDER if (root / a / "__init__.py").exists()]
    graph = grimp.build_graph(*apps)
    edges: Counter = Counter()
    for module in graph.modules:
        if ".tests" in module or ".migrations" in module:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if ".tests" in imported:
                continue
            source, target = module.split(".")[0], imported.split(".")[0]
            if source != target:
                edges[(source, target)] += 1
    upward = 0
    for (source, target), count in sorted(edges.items(), key=lambda e: (apps.index(e[0][0]), apps.index(e[0][1]))):
        direction = "down" if apps.index(target) < apps.index(source) else "UP"
        upward += direction == "UP"
        print(f"{source:>11} -> {target:<11} {count:4d} imports  {direction}")
    print(f"{len(edges)} app-to-app dependencies, {upward} against the layers ({' <- '.join(apps)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
