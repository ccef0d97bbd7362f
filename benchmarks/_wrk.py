"""Load from Debian's `wrk` (C, epoll): a load generator that is not the bottleneck on a
2-core machine shared with the server. The request mix is drawn from the Python
workload once and written into a Lua script; wrk replays it round-robin."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from wedsync_perf.traffic import ClassMix

__all__ = ["have_wrk", "run_wrk", "write_script"]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def write_script(workload: Any, mix: ClassMix, count: int = 3000, seed: int = 5) -> Path:
    """A Lua script cycling through `count` requests drawn from `workload` with `mix`."""
    rng = random.Random(seed)
    entries = []
    for _ in range(count):
        spec = workload.next_request(mix.pick(rng), rng)
        headers = dict(spec.headers)
        body = ""
        if spec.json is not None:
            body = json.dumps(spec.json)
            headers["Content-Type"] = "application/json"
        elif spec.content is not None:
            body = spec.content.decode("utf-8", "replace")
            headers.setdefault("Content-Type", "text/csv")
        header_lua = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        entries.append(
            f"{{{_lua_string(spec.method)}, {_lua_string(spec.path)}, {{{header_lua}}}, {_lua_string(body)}}}"
        )
    script = (
        "local reqs = {\n" + ",\n".join(entries) + "\n}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #reqs + 1\n"
        "  local r = reqs[i]\n"
        "  local body = nil\n"
        "  if r[4] ~= '' then body = r[4] end\n"
        "  return wrk.format(r[1], r[2], r[3], body)\n"
        "end\n"
        "done = function(summary, latency, requests)\n"
        "  for _, p in ipairs({50, 95, 99}) do\n"
        "    io.write(string.format('P%d_US %d\\n', p, latency:percentile(p)))\n"
        "  end\n"
        "  io.write(string.format('STATUS_ERRORS %d\\n', summary.errors.status))\n"
        "  io.write(string.format('TIMEOUTS %d\\n', summary.errors.timeout))\n"
        "end\n"
    )
    path = Path(tempfile.mkstemp(suffix=".lua", prefix="wedsync-wrk-")[1])
    path.write_text(script)
    return path


_LATENCY = re.compile(r"^\s+(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s)\s*$")
_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    url: str, script: Path, *, connections: int, seconds: float, threads: int = 1
) -> dict[str, Any]:
    """Closed loop with `connections`; returns requests/s and latency percentiles (ms)."""
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    out: dict[str, Any] = {"percentiles_ms": {}}
    for line in done.stdout.splitlines():
        if line.startswith(("P50_US", "P95_US", "P99_US")):
            name, value = line.split()
            out[f"p{name[1:3]}_ms"] = round(int(value) / 1000, 3)
        if line.startswith(("STATUS_ERRORS", "TIMEOUTS")):
            name, value = line.split()
            out[name.lower()] = int(value)
        match = _LATENCY.match(line)
        if match:
            out["percentiles_ms"][match.group(1)] = round(
                float(match.group(2)) * _SCALE[match.group(3)], 3
            )
        if line.startswith("Requests/sec:"):
            out["rps"] = float(line.split(":")[1])
        if "Non-2xx or 3xx responses:" in line:
            out["non_2xx"] = int(line.split(":")[1])
        if "requests in" in line:
            out["requests"] = int(line.strip().split()[0])
    return out
