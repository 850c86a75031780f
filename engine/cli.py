"""The ``infercast`` command line: estimate, sweep, chips, models, config, validate (and forecast).

Every user error ends as one line ``infercast: error: ...`` on stderr with exit
code 2 and no traceback; output files are written atomically.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

#: the demonstration grid of ``infercast sweep`` with no --models/--chips: the starter catalog
STARTER_MODELS = ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-2-70b", "mixtral-8x7b",
                  "deepseek-v3")
STARTER_CHIPS = ("h100-sxm", "h200", "b200", "a100-80gb", "mi300x", "l40s")
DEFAULT_SWEEP = dict(tp="1,2,4,8", pp="1", batch="1,2,4,8,16,32,64,128,256",
                     prompt="128,512,2048,8192", output="128,512,2048")


class UserError(Exception):
    """Bad input reported as a one-line error and exit code 2."""


def _int_list(text: str, field: str) -> list[int]:
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            v = float(part)
        except ValueError:
            raise UserError(f"{field} must be integers separated by commas, got {part!r}") from None
        if not math.isfinite(v) or v != int(v):
            raise UserError(f"{field} must be an integer, got {part!r}")
        out.append(int(v))
    return out


def _str_list(text: str) -> list[str]:
    return [p.strip() for p in str(text).split(",") if p.strip()]


def _one_int(text: str, field: str) -> int:
    vals = _int_list(text, field)
    if len(vals) != 1:
        raise UserError(f"{field} takes one integer, got {text!r}")
    return vals[0]


def _fmt(v, width=10):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:{width}.4g}"
    return str(v).rjust(width)


def _add_common(p, plural: bool):
    s = "s" if plural else ""
    p.add_argument("--tp", default="1", help=f"tensor-parallel degree{s}")
    p.add_argument("--pp", default="1", help=f"pipeline-parallel degree{s}")
    p.add_argument("--weights", default="bf16", help=f"weight format{s} (bf16, fp8, int8, int4, fp4...)")
    p.add_argument("--kv", default="bf16", help=f"KV-cache format{s}")
    p.add_argument("--act", default="bf16",
                   help=f"activation/compute format{s}; matmuls run at this format's peak")
    p.add_argument("--backend", choices=("cython", "numba", "numpy"), default=None)
    p.add_argument("--catalog", metavar="FILE", help="extra chips/models (TOML or JSON)")
    p.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="infercast", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("estimate", help="one scenario: latency, throughput, memory, cost")
    p.add_argument("--model", required=True, help="catalog name or path to a config.json")
    p.add_argument("--chip", required=True)
    p.add_argument("--batch", default="1")
    p.add_argument("--prompt", default="1024", help="prompt tokens")
    p.add_argument("--output", default="256", help="output tokens")
    p.add_argument("--max-throughput", action="store_true",
                   help="choose the batch (within memory) that maximises output tokens/s")
    p.add_argument("--ttft-max", type=float, default=None, metavar="S",
                   help="with --max-throughput: time-to-first-token limit [s]")
    p.add_argument("--tpot-max", type=float, default=None, metavar="S",
                   help="with --max-throughput: time-per-output-token limit [s]")
    p.add_argument("--batching", choices=("static", "continuous"), default="static",
                   help="with --max-throughput: latency model for the limits (docs/validation.md)")
    eff = p.add_mutually_exclusive_group()
    eff.add_argument("--ideal", action="store_true",
                     help="ideal roofline (efficiency factors 1, no per-step overhead)")
    eff.add_argument("--calibrated", action="store_true",
                     help="fitted efficiency factors of the chip's family (engine/data/calibration.toml)")
    _add_common(p, plural=False)

    p = sub.add_parser("validate", help="predictions vs measured results (median abs. % error)")
    p.add_argument("--data", metavar="FILE", default=None,
                   help="CSV with the columns of measured_calibration.csv (default: the shipped copy)")
    p.add_argument("--ideal", action="store_true",
                   help="ideal roofline instead of the calibrated factors")
    p.add_argument("--worst", type=int, default=10, help="worst rows to list")
    p.add_argument("--catalog", metavar="FILE", help="extra chips/models (TOML or JSON)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("sweep", help="a Cartesian grid of scenarios (defaults: the starter catalog)")
    p.add_argument("--models", default=None, help="comma-separated (default: the 6 starter models)")
    p.add_argument("--chips", default=None, help="comma-separated (default: the 6 starter chips)")
    p.add_argument("--batch", default=DEFAULT_SWEEP["batch"])
    p.add_argument("--prompt", default=DEFAULT_SWEEP["prompt"])
    p.add_argument("--output", default=DEFAULT_SWEEP["output"])
    p.add_argument("--threads", default=None, help="threads for compiled backends")
    p.add_argument("--out", metavar="FILE", help="write every point to .parquet or .csv")
    _add_common(p, plural=True)
    p.set_defaults(tp=DEFAULT_SWEEP["tp"])

    p = sub.add_parser("chips", help="list catalog chips")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    p.add_argument("name", nargs="?")
    p.add_argument("--vendor")
    p.add_argument("--kind", choices=("training", "inference", "both", "edge"))
    p.add_argument("--min-memory", type=float, default=None, metavar="GB")
    p.add_argument("--catalog", metavar="FILE")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("models", help="list catalog models, or add one from a config.json")
    p.add_argument("action", nargs="?", choices=("list", "add"), default="list")
    p.add_argument("config", nargs="?", metavar="CONFIG",
                   help="with add: a Hugging Face config.json to read (offline)")
    p.add_argument("--name", help="with add: catalog name (default: from the config)")
    p.add_argument("--catalog", metavar="FILE",
                   help="user catalog (TOML); with add, the file the model is written to")
    p.add_argument("--json", action="store_true")

    sub.add_parser("config", help="backends, OpenMP, threads")

    try:
        from .market import cli as market_cli
    except ImportError:
        market_cli = None
    if market_cli is not None and hasattr(market_cli, "add_parser"):
        market_cli.add_parser(sub)
    return ap


def _catalog_path(args):
    """--catalog FILE, else the INFERCAST_CATALOG environment variable, else None."""
    import os
    return getattr(args, "catalog", None) or os.environ.get("INFERCAST_CATALOG") or None


def _use_catalog(args):
    path = _catalog_path(args)
    if path is None:
        return
    from pathlib import Path
    if getattr(args, "action", None) == "add" and not Path(path).exists():
        return                      # models add creates it
    from . import catalog
    catalog.load_catalog(path)


def cmd_estimate(args) -> int:
    import engine
    from . import catalog
    if not args.max_throughput and (args.ttft_max is not None or args.tpot_max is not None):
        raise UserError("--ttft-max/--tpot-max need --max-throughput")
    calibrated = True if args.calibrated else False if args.ideal else None
    chip = catalog.get_chip(args.chip, calibrated=calibrated)
    common = dict(tp=_one_int(args.tp, "tp"), pp=_one_int(args.pp, "pp"),
                  prompt_tokens=_one_int(args.prompt, "prompt"),
                  output_tokens=_one_int(args.output, "output"),
                  weight_dtype=args.weights, kv_dtype=args.kv, act_dtype=args.act)
    if args.max_throughput:
        est = engine.max_throughput(args.model, chip, ttft_max=args.ttft_max,
                                    tpot_max=args.tpot_max, batching=args.batching,
                                    backend=args.backend or "numpy", **common)
    else:
        est = engine.estimate(args.model, chip, batch=_one_int(args.batch, "batch"),
                              backend=args.backend, **common)
    if args.json:
        print(est.to_json(indent=2))
        return 0
    for k, v in est.items():
        print(f"{k:38s} {_fmt(v, 0).strip()}")
    return 0


def cmd_sweep(args) -> int:
    import numpy as np

    import engine
    models = _str_list(args.models) if args.models else list(STARTER_MODELS)
    chips = _str_list(args.chips) if args.chips else list(STARTER_CHIPS)
    threads = _one_int(args.threads, "threads") if args.threads is not None else None
    res = engine.sweep(models, chips, tp=_int_list(args.tp, "tp"), pp=_int_list(args.pp, "pp"),
                       batch=_int_list(args.batch, "batch"),
                       prompt_tokens=_int_list(args.prompt, "prompt"),
                       output_tokens=_int_list(args.output, "output"),
                       weight_dtype=_str_list(args.weights), kv_dtype=_str_list(args.kv),
                       act_dtype=_str_list(args.act), backend=args.backend, n_threads=threads)
    if args.out:
        res.write(args.out)
    summary = res.summary()
    if args.out:
        summary["out"] = args.out
    # best operating point per (model, chip): lowest cost per million output tokens among fits
    table = []
    model_col, chip_col = res["model"], res["chip"]
    cost = res["cost_per_million_output_tokens_usd"]
    tps = res["output_tokens_per_s_per_chip"]
    fits = res["fits"]
    for m in dict.fromkeys(model_col):
        for c in dict.fromkeys(chip_col):
            sel = np.flatnonzero((model_col == m) & (chip_col == c) & fits)
            if not len(sel):
                table.append({"model": m, "chip": c, "fits": False})
                continue
            key = np.where(np.isfinite(cost[sel]), cost[sel], np.inf)
            i = int(sel[np.argmin(key)] if np.isfinite(key).any() else sel[np.nanargmax(tps[sel])])
            r = res.row(i)
            table.append({k: r[k] for k in ("model", "chip", "tp", "batch", "prompt_tokens",
                                            "output_tokens", "tpot_s",
                                            "output_tokens_per_s_per_chip",
                                            "cost_per_million_output_tokens_usd")} | {"fits": True})
    if args.json:
        from .results import _json_value
        summary["best"] = [{k: _json_value(v) for k, v in row.items()} for row in table]
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['points']} points evaluated ({summary['fits']} fit in memory) "
          f"with backend {summary['backend']} on {summary['n_threads']} thread(s)"
          + (f"; written to {args.out}" if args.out else ""))
    print("Cheapest operating point per model and chip (rental price; '-' = price unknown):")
    hdr = ("model", "chip", "tp", "batch", "prompt", "output", "TPOT [ms]", "tok/s/chip", "$/Mtok")
    print(f"{hdr[0]:16s} {hdr[1]:10s} {hdr[2]:>3s} {hdr[3]:>6s} {hdr[4]:>6s} {hdr[5]:>6s} "
          f"{hdr[6]:>10s} {hdr[7]:>10s} {hdr[8]:>8s}")
    for row in table:
        if not row["fits"]:
            print(f"{row['model']:16s} {row['chip']:10s} does not fit at any grid point")
            continue
        print(f"{row['model']:16s} {row['chip']:10s} {row['tp']:3d} {row['batch']:6d} "
              f"{row['prompt_tokens']:6d} {row['output_tokens']:6d} "
              f"{_fmt(row['tpot_s'] * 1e3)} {_fmt(row['output_tokens_per_s_per_chip'])} "
              f"{_fmt(row['cost_per_million_output_tokens_usd'], 8)}")
    return 0


def cmd_chips(args) -> int:
    from . import catalog
    if args.action == "show":
        if not args.name:
            raise UserError("chips show needs a chip NAME")
        chip = catalog.get_chip(args.name)
        figs = chip.figures()
        if args.json:
            print(json.dumps(figs, indent=2, default=str))
            return 0
        for k, f in figs.items():
            if f["value"] in (None, ""):
                continue
            est = " (estimate)" if f["estimate"] else ""
            src = f"  [{f['source']}]" if f["source"] else ""
            print(f"{k:26s} {f['value']}{est}{src}")
        return 0
    rows = []
    for chip in catalog.chips().values():
        if args.vendor and args.vendor.lower() not in chip.vendor.lower():
            continue
        if args.kind and chip.kind != args.kind:
            continue
        if args.min_memory is not None and (chip.memory_bytes or 0) < args.min_memory * 1e9:
            continue
        rows.append({"name": chip.name, "vendor": chip.vendor, "kind": chip.kind,
                     "memory_gb": None if chip.memory_bytes is None else chip.memory_bytes / 1e9,
                     "memory_bandwidth_tbs": None if chip.memory_bandwidth is None
                     else chip.memory_bandwidth / 1e12,
                     "bf16_tflops": None if chip.peak_flops_bf16 is None
                     else chip.peak_flops_bf16 / 1e12,
                     "hourly_usd": chip.hourly_price, "full_name": chip.full_name})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':20s} {'vendor':16s} {'kind':9s} {'mem GB':>8s} {'TB/s':>7s} {'bf16 TF':>8s} "
          f"{'$/h':>6s}")
    for r in rows:
        print(f"{r['name']:20s} {r['vendor'][:16]:16s} {r['kind']:9s} {_fmt(r['memory_gb'], 8)} "
              f"{_fmt(r['memory_bandwidth_tbs'], 7)} {_fmt(r['bf16_tflops'], 8)} "
              f"{_fmt(r['hourly_usd'], 6)}")
    return 0


def cmd_models_add(args) -> int:
    from pathlib import Path

    from . import catalog
    from .model import Model
    if not args.config:
        raise UserError("models add needs a CONFIG path (a Hugging Face config.json)")
    target = _catalog_path(args)
    if target is None:
        raise UserError("models add needs --catalog FILE.toml (or INFERCAST_CATALOG) to save "
                        "the model in")
    m = Model.from_hf_config(args.config, name=args.name)
    catalog.add_model_to_catalog(m, target, source=f"config.json: {Path(args.config).resolve()}")
    info = {"name": m.name, "catalog": str(target), "n_layers": m.n_layers,
            "hidden_size": m.hidden_size, "total_params": m.total_params,
            "active_params": m.active_params,
            "kv_bytes_per_token_bf16": m.kv_bytes_per_token("bf16")}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"added model '{m.name}' to {target}: {m.n_layers} layers, "
              f"{m.total_params / 1e9:.2f}B parameters ({m.active_params / 1e9:.2f}B active); "
              f"use it with --catalog {target} --model {m.name}")
    return 0


def cmd_models(args) -> int:
    from . import catalog
    if args.action == "add":
        return cmd_models_add(args)
    rows = []
    for m in catalog.models().values():
        rows.append({"name": m.name, "family": m.family, "layers": m.n_layers,
                     "hidden_size": m.hidden_size, "total_params": m.total_params,
                     "active_params": m.active_params,
                     "kv_bytes_per_token_bf16": m.kv_bytes_per_token("bf16"),
                     "moe": m.is_moe, "mla": m.is_mla})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':22s} {'layers':>6s} {'hidden':>7s} {'total B':>8s} {'active B':>8s} "
          f"{'KV B/token':>11s}")
    for r in rows:
        print(f"{r['name']:22s} {r['layers']:6d} {r['hidden_size']:7d} "
              f"{r['total_params'] / 1e9:8.2f} {r['active_params'] / 1e9:8.2f} "
              f"{r['kv_bytes_per_token_bf16']:11.0f}")
    return 0


def cmd_validate(args) -> int:
    from . import validate
    if args.worst < 0:
        raise UserError(f"worst must be >= 0, got {args.worst}")
    result = validate.validate(args.data, ideal=args.ideal)
    if args.json:
        from .results import _json_value
        rows = [{k: _json_value(v) for k, v in r.items()} for r in result["rows"]]
        print(json.dumps({"rows": rows, "median_abs_pct_error": result["median_abs_pct_error"],
                          "mapped": result["mapped"], "total": result["total"]}, indent=2))
        return 0
    print(validate.format_report(result, worst=args.worst))
    return 0


def cmd_config(args) -> int:
    from .config import show_config
    show_config()
    return 0


COMMANDS = {"estimate": cmd_estimate, "sweep": cmd_sweep, "chips": cmd_chips,
            "models": cmd_models, "config": cmd_config, "validate": cmd_validate}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _use_catalog(args)
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        from .market import cli as market_cli
        return market_cli.run(args)
    except BrokenPipeError:
        return 0
    except MemoryError:
        print("infercast: error: out of memory; make the sweep or the draw count smaller",
              file=sys.stderr)
        return 2
    except (UserError, ValueError, TypeError, KeyError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"infercast: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infercast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
