"""Benchmark: classification accuracy and auto-filing share on a generated corpus of letters.

Generates German letters (default 600) across ten file plan items, one open file each, and
splits them: 60% training, 20% validation (to choose the threshold), 20% held out. The model
is the one the inbox uses (`inbox.classifier.train`: tf-idf over text, subject and sender
domain; calibrated linear SVM). On the validation split it picks the lowest confidence
threshold at which the auto-filed letters are at least 99% correct; on the held-out split it
prints accuracy, the share auto-filed and how many of those are correct (target: at least
98%), against a baseline measured in the same run (always proposing the most frequent file).

    .venv/bin/python bench/classification.py --letters 600 --seed 4
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inbox.classifier import Sample, sender_domain, train  # noqa: E402
from tests.inbox.corpus.letters import Letter, generate  # noqa: E402

TARGET_PRECISION = 0.98
VALIDATION_PRECISION = 0.99


def sample(letter: Letter) -> Sample:
    """A letter as training data: its file is the one open file of its plan item."""
    return Sample(text=letter.text, subject=letter.subject,
                  sender_domain=sender_domain(letter.sender), file_id=f"file-{letter.plan_code}",
                  reference=f"{letter.plan_code}-2026/0001", plan_code=letter.plan_code,
                  kind=letter.kind)


def evaluate(predictions: list[tuple[str, float, str]], threshold: float) -> tuple[float, float,
                                                                                   float]:
    """Accuracy, share auto-filed at `threshold`, and precision of the auto-filed ones."""
    correct = sum(1 for guess, _, truth in predictions if guess == truth)
    auto = [(guess, truth) for guess, conf, truth in predictions if conf >= threshold]
    auto_correct = sum(1 for guess, truth in auto if guess == truth)
    return (correct / len(predictions), len(auto) / len(predictions),
            auto_correct / len(auto) if auto else 1.0)


def choose_threshold(predictions: list[tuple[str, float, str]]) -> float:
    """The lowest threshold whose auto-filed predictions reach the validation precision."""
    for threshold in [t / 100 for t in range(50, 100)]:
        _, share, precision = evaluate(predictions, threshold)
        if precision >= VALIDATION_PRECISION and share > 0:
            return threshold
    return 0.99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--letters", type=int, default=600)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if args.letters < 500:
        parser.error("the corpus must have at least 500 letters")

    letters = generate(args.letters, seed=args.seed)
    random.Random(args.seed).shuffle(letters)
    n = len(letters)
    training, validation, held_out = (letters[: n * 3 // 5], letters[n * 3 // 5: n * 4 // 5],
                                      letters[n * 4 // 5:])
    started = time.perf_counter()
    model = train([sample(x) for x in training])
    trained_in = time.perf_counter() - started

    def predict(batch: list[Letter]) -> list[tuple[str, float, str]]:
        out = []
        for x in batch:
            best = model.propose(x.text, x.subject, sender_domain(x.sender), top=1)[0]
            out.append((best.plan_code, best.confidence, x.plan_code))
        return out

    threshold = choose_threshold(predict(validation))
    started = time.perf_counter()
    results = predict(held_out)
    per_letter_ms = (time.perf_counter() - started) / len(held_out) * 1000
    accuracy, share, precision = evaluate(results, threshold)

    most_common = Counter(x.plan_code for x in training).most_common(1)[0][0]
    baseline = sum(1 for x in held_out if x.plan_code == most_common) / len(held_out)
    kinds_right = sum(1 for x in held_out
                      if model.propose(x.text, x.subject, sender_domain(x.sender))[0].kind
                      == x.kind) / len(held_out)

    print(f"corpus: {n} letters, {len({x.plan_code for x in letters})} plan items; "
          f"train {len(training)}, validation {len(validation)}, held out {len(held_out)}")
    print(f"training: {trained_in:.2f} s; classification: {per_letter_ms:.2f} ms per letter")
    print(f"baseline (most frequent plan item) accuracy: {baseline:.3f}")
    print(f"model accuracy (top proposal):              {accuracy:.3f}")
    print(f"ratio model / baseline accuracy:            {accuracy / baseline:.1f}x")
    print(f"document kind accuracy:                     {kinds_right:.3f}")
    print(f"threshold chosen on validation:             {threshold:.2f}")
    print(f"auto-filed share at threshold:              {share:.3f}")
    print(f"auto-filed correct:                         {precision:.3f} "
          f"(target >= {TARGET_PRECISION:.2f})")
    ok = precision >= TARGET_PRECISION
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
