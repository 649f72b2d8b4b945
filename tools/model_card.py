"""model_card: writes models/README.md's section for a bundled model from its training log
(`lstmgen train --json` output) and `lstmgen info --json` of the checkpoint.
Usage: model_card.py NAME TRAIN_JSONL INFO_JSON COMMAND > section.md"""
import json
import sys


def main():
    name, log_path, info_path, command = sys.argv[1:5]
    epochs = [json.loads(l) for l in open(log_path, encoding="utf-8") if l.startswith("{")]
    info = json.load(open(info_path, encoding="utf-8"))
    meta = info["metadata"]
    whole = [e for e in epochs if not e["partial"]]
    best = min(whole, key=lambda e: e["val_loss"]) if whole else None
    total = epochs[-1]["elapsed"] if epochs else 0
    out = [f"## {name}.safetensors", "",
           f"Trained with (`{info['layers']} x LSTM({info['hidden']})`, {info['vocab_size']} characters, "
           f"{info['parameters']:,} parameters, {info['file_size']:,} bytes):", "",
           "```sh", command, "```", "",
           f"- corpus sha256: `{meta.get('corpus_sha256', '?')}` ({meta.get('corpus_chars', '?')} characters)",
           f"- regime: {info['regime']}; lowercase: {'yes' if info['lowercase'] else 'no'}",
           f"- epochs run: {len(whole)}; training time: {total / 60:.1f} min on this repository's 2-core "
           f"machine",
           f"- the file holds epoch {best['epoch']} (best validation loss {best['val_loss']:.4f} nats "
           f"per character, {best['val_loss'] / 0.6931471805599453:.3f} bits)" if best else "", "",
           "| epoch | train loss | val loss | seconds |", "|---:|---:|---:|---:|"]
    for e in whole:
        out.append(f"| {e['epoch']} | {e['train_loss']:.4f} | {e['val_loss']:.4f} | {e['seconds']:.1f} |")
    if best:
        out += ["", f"Samples at the end of epoch {best['epoch']}, seed text \"{best['sample_seed']}\":", ""]
        for t, text in best["samples"].items():
            out += [f"- T = {t}:", "", "  ```", *("  " + l for l in text.splitlines() or [""]), "  ```", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
