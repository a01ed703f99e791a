"""The report of an exported model: report.json, report.md and an ML-zoo style manifest."""

import dataclasses
import datetime
import hashlib

import numpy as np

from udc import __version__
from udc.fileio import write_json_atomic, write_text_atomic


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_report(*, name, tflite: bytes, keras_accuracy, int8_accuracy, vela, tflm_arena_bytes,
                 tflm_agreement, tflm_max_code_difference, saturated_biases, operators, weight_stats, dataset, test_examples,
                 extra=None) -> dict:
    report = {
        "name": name,
        "udc_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset,
        "test_examples": test_examples,
        "accuracy": {"keras": keras_accuracy, "int8_tflite": int8_accuracy,
                     "drop_points": None if keras_accuracy is None
                     else round(100 * (keras_accuracy - int8_accuracy), 3)},
        "tflite": {"file": f"{name}.tflite", "bytes": len(tflite), "sha256": sha256(tflite),
                   "operators": operators, "saturated_bias_entries": saturated_biases},
        "weights": _weight_summary(weight_stats),
        "vela": vela.summary(),
        "tflm": {"arena_bytes": tflm_arena_bytes, "top1_agreement_with_litert": tflm_agreement,
                 "max_output_code_difference": tflm_max_code_difference},
    }
    if extra:
        report.update(extra)
    return report


def _weight_summary(weight_stats) -> dict:
    counts = [int(np.prod(s.shape)) for s in weight_stats]
    total = max(sum(counts), 1)
    return {
        "count": sum(counts),
        "zero_fraction": sum(s.zero_fraction * n for s, n in zip(weight_stats, counts)) / total,
        "max_distinct_values": max((s.distinct_values for s in weight_stats), default=0),
        "codec_bytes_stored_order": sum(s.encoded_bytes for s in weight_stats),
        "two_four_layers": sum(s.two_four == "yes" for s in weight_stats),
        "per_tensor": [dataclasses.asdict(s) for s in weight_stats],
    }


def to_markdown(report: dict) -> str:
    v, a, t = report["vela"], report["accuracy"], report["tflite"]
    cpu = ", ".join(v["cpu_op_names"]) or "none"
    rows = [
        ("int8 .tflite test accuracy", f"{a['int8_tflite']:.2%} ({report['test_examples']} test images)"),
        ("Keras test accuracy", "not measured (exported from a .tflite)" if a["keras"] is None
         else f"{a['keras']:.2%} (drop {a['drop_points']:.2f} points)"),
        (".tflite bytes", f"{t['bytes']:,}"),
        ("Vela encoded weight bytes", f"{v['encoded_weight_bytes']:,} (original {v['original_weight_bytes']:,})"),
        ("Flash used (KiB)", f"{v['flash_kib']:.2f}"),
        ("SRAM used (KiB)", f"{v['sram_kib']:.2f}"),
        ("NPU cycles", f"{v['cycles']:,}"),
        ("Inference time", f"{v['inference_time_s'] * 1e3:.3f} ms"),
        ("Operators on NPU / CPU", f"{v['npu_ops']} / {v['cpu_ops']} ({v['npu_fraction']:.0%} NPU); on CPU: {cpu}"),
        # Only the Ethos-U85 runs 2:4-sparse weights faster; elsewhere the row would only confuse.
        *([("Weight layers in the U85's 2:4 sparse format", f"{report['weights'].get('two_four_layers', 0)} of "
            f"{len(report['weights']['per_tensor'])} meet its rules (per layer: report.json, "
            "weights.per_tensor[].two_four)")] if v["target"].get("accelerator", "").startswith("ethos-u85") else []),
        ("TFLite Micro arena bytes", f"{report['tflm']['arena_bytes']:,}"),
        ("TFLite Micro vs LiteRT", f"same class on {report['tflm']['top1_agreement_with_litert']:.0%} of "
         f"sampled images, outputs within {report['tflm']['max_output_code_difference']} int8 codes"),
    ]
    target = v["target"]
    lines = [
        f"# {report['name']}",
        "",
        f"Dataset `{report['dataset']}`; target `{target['name']}` "
        f"({target['system_config']}, {target['memory_mode']}); udc {report['udc_version']}.",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {val} |" for k, val in rows],
        "",
        f"Operators in the .tflite: {', '.join(t['operators'])}. sha256 `{t['sha256']}`.",
    ]
    if t["saturated_bias_entries"]:
        lines.append(f"\n**Warning:** {t['saturated_bias_entries']} int32 bias entries are saturated.")
    return "\n".join(lines) + "\n"


def to_manifest(report: dict) -> str:
    """definition.yaml in the style of Arm ML-zoo: what the file is, where it came from."""
    v, t = report["vela"], report["tflite"]
    ops = sorted(set(t["operators"]))
    lines = [
        "paper: null",
        f"udc_version: {report['udc_version']}",
        f"dataset: {report['dataset']}",
        "network:",
        f"  file_name: {t['file']}",
        f"  hash: {{algorithm: sha256, value: {t['sha256']}}}",
        "  datatype: int8",
        f"  size_bytes: {t['bytes']}",
        f"  encoded_weight_bytes: {v['encoded_weight_bytes']}",
        f"  flash_kib: {v['flash_kib']:.2f}",
        f"  sram_kib: {v['sram_kib']:.2f}",
        f"  target: {v['target']['name']}",
        f"  npu_fraction: {v['npu_fraction']:.3f}",
        "operators:",
        *[f"  - {op}" for op in ops],
        "metric:",
        f"  top_1_accuracy: {report['accuracy']['int8_tflite']:.4f}",
        f"  test_examples: {report['test_examples']}",
    ]
    w = report["weights"]
    lines += [
        f"pruned: {str(w['zero_fraction'] > 0.05).lower()}  # zero fraction {w['zero_fraction']:.3f}",
        f"max_distinct_weight_values: {w['max_distinct_values']}",
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict, output_dir) -> None:
    write_json_atomic(f"{output_dir}/report.json", report)
    write_text_atomic(f"{output_dir}/report.md", to_markdown(report))
    write_text_atomic(f"{output_dir}/definition.yaml", to_manifest(report))
