"""The bootstrap run INSIDE the bubblewrap sandbox as `python -I -S -B -c <this file's text> <limits>`.

Standard library only; Django never imports it. It lowers the rlimits (argv[1], JSON) before any user code runs,
announces itself on stdout (so the host can tell "the sandbox started" from "bwrap failed"), reads
{"code", "inputs"} from stdin, runs the code with `inputs` bound (`main(inputs)` when defined, else the `result`
global), and writes the result as JSON after a marker. The kernel enforces the boundary; nothing here is a guard.
"""

import io
import json
import resource
import sys

READY = "__SANDBOX_READY__"
MARKER = "__SANDBOX_RESULT__"


def _set_limits(limits: dict) -> None:
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _run(payload: dict) -> dict:
    buf = io.StringIO()
    real_stdout = sys.stdout
    scope = {"__name__": "__sandbox__", "inputs": payload["inputs"]}
    error = None
    try:
        sys.stdout = buf
        exec(compile(payload["code"], "<node>", "exec"), scope)  # noqa: S102 - the sandbox is the point
        result = scope["main"](payload["inputs"]) if callable(scope.get("main")) else scope.get("result")
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is reported, never raised
        result = None
        error = type(exc).__name__ + ": " + str(exc)[:1000]
    finally:
        sys.stdout = real_stdout
    return {"result": result, "stdout": buf.getvalue()[-10000:], "error": error}


def main() -> None:
    _set_limits(json.loads(sys.argv[1]))
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    outcome = _run(json.loads(sys.stdin.read()))
    try:
        text = json.dumps(outcome)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"result": None, "stdout": "", "error": f"Result is not JSON serialisable: {exc}"})
    sys.stdout.write("\n" + MARKER + text)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
