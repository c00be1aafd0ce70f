"""Per-op cost of a .tflite on LiteRT (XNNPACK) by timing graph prefixes: the model cut after op k (its
output the last op's result) is timed for every k, interleaved; op k's cost is prefix(k) − prefix(k − 1).

Usage: python benchmarks/profile_ops.py MODEL.tflite [--threads 2] [--rounds 15] [--top 15] [--cpu-time] [--json]

Prints the ops by cost (median of the differences over rounds, ms) and the cost summed per op type. The
differences are noisy for ops under ~0.05 ms; the per-type sums are the useful numbers. Slow: one
interpreter per op (the A int8 model has 112 ops). On a busy machine, `--threads 1 --cpu-time` (this
process's CPU time instead of wall time) is far less noisy than wall-clock timing.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

from fastsal_tf.runtime.resolve import check_model_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prefix_models(model_bytes: bytes) -> tuple[list[bytes], list[str], list[str]]:
    """(model bytes cut after each op, op type names, op output tensor names), in execution order."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    from fastsal_tf.export.flatbuffer import decode_name, pack_model

    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    graph = model.subgraphs[0]
    operators = list(graph.operators)
    kinds = [codes.get(flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex]),
                       "?") for op in operators]
    names = [decode_name(graph.tensors[op.outputs[0]].name) for op in operators]
    model.signatureDefs = []
    prefixes = []
    for count in range(1, len(operators) + 1):
        graph.operators = operators[:count]
        graph.outputs = [operators[count - 1].outputs[0]]
        prefixes.append(pack_model(model))
    return prefixes, kinds, names


def time_prefixes(prefixes: list[bytes], threads: int, rounds: int, runs: int = 5,
                  clock=time.perf_counter) -> np.ndarray:
    """(rounds, len(prefixes)) median-of-`runs` time in ms (of `clock`) of each prefix per round, rounds
    interleaved."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for data in prefixes:
        interpreter = Interpreter(model_content=data, num_threads=threads)
        interpreter.allocate_tensors()
        (detail,) = interpreter.get_input_details()
        interpreter.set_tensor(detail["index"], np.random.default_rng(0).integers(
            0, 256, detail["shape"]).astype(detail["dtype"]))
        interpreter.invoke()
        interpreters.append(interpreter)
    table = np.zeros((rounds, len(prefixes)))
    for round_index in range(rounds):
        for column, interpreter in enumerate(interpreters):
            times = []
            for _ in range(runs):
                start = clock()
                interpreter.invoke()
                times.append(clock() - start)
            table[round_index, column] = 1000.0 * float(np.median(times))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .tflite file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--top", type=int, default=15, help="ops listed by cost")
    parser.add_argument("--cpu-time", action="store_true", help="time with this process's CPU time (use with "
                        "--threads 1 on a busy machine)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    args = parser.parse_args()
    path = pathlib.Path(args.model)
    try:
        if not path.exists():
            raise ValueError(f"{path}: no such file")
        check_model_file(path, "litert")
        prefixes, kinds, names = prefix_models(path.read_bytes())
    except (ValueError, OSError) as error:
        print(f"profile_ops: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a FlatBuffer that passes the identifier check but does not parse
        print(f"profile_ops: {path}: not a readable LiteRT model ({type(error).__name__})", file=sys.stderr)
        return 2
    clock = time.process_time if args.cpu_time else time.perf_counter
    table = time_prefixes(prefixes, args.threads, args.rounds, clock=clock)
    costs = np.median(np.diff(np.concatenate([np.zeros((args.rounds, 1)), table], axis=1), axis=1), axis=0)
    total = float(np.median(table[:, -1]))
    by_type: dict[str, float] = {}
    for kind, cost in zip(kinds, costs):
        by_type[kind] = by_type.get(kind, 0.0) + float(cost)
    if args.json:
        print(json.dumps({"model": args.model, "threads": args.threads, "cpu_time": args.cpu_time, "total_ms": total,
                          "load_average": os.getloadavg(), "by_type_ms": by_type,
                          "ops": [{"index": i, "type": k, "output": n, "ms": float(c)}
                                  for i, (k, n, c) in enumerate(zip(kinds, names, costs))]}, indent=1))
        return 0
    print(f"{args.model}: {len(kinds)} ops, whole graph {total:.2f} ms (median of {args.rounds} rounds, "
          f"{args.threads} threads, {'CPU' if args.cpu_time else 'wall'} time); load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("by op type (ms):")
    for kind, cost in sorted(by_type.items(), key=lambda item: -item[1]):
        print(f"  {kind:<20} {cost:7.3f}  ({kinds.count(kind)} ops)")
    print(f"top {args.top} ops (ms):")
    for index in np.argsort(-costs)[:args.top]:
        print(f"  {index:4d} {kinds[index]:<18} {costs[index]:7.3f}  {names[index][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
