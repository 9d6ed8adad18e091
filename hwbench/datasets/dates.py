"""Dates written by people, translated into ISO 8601: the translator's data set.

A sentence is one calendar date between 1950-01-01 and 2049-12-31 written in one of
``FORMATS`` — English, French, German, Spanish, Italian, Portuguese, Chinese/Japanese
and numeric styles ("March 3rd, 2021", "mercredi 3 mars 2021", "3. März 2021",
"03/03/21", "2021年3月3日") — and its translation is that date as ``YYYY-MM-DD``.
Nothing is downloaded: the samples are generated from a seed, so every machine builds
the same ones. The split is by date, not by sentence: a date is a test date when its
ordinal is ``TEST_RESIDUE`` modulo ``TEST_EVERY``, so no test date (in any wording)
is ever seen in training. Two-digit years pivot at 50 ("21" is 2021, "87" is 1987),
which the 1950-2049 range makes unambiguous; numeric day/month orders are told apart
by their separator (US ``M/D/Y`` with slashes, European ``D.M.Y`` with dots).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable

import numpy as np

from hwbench.errors import ArgumentError

FIRST, LAST = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)
TEST_EVERY, TEST_RESIDUE = 10, 3  # one date in ten is a test date
SIZES = {"train": 20_000, "test": 2_000}  # sentences per split by default
SPLITS = tuple(SIZES)

MONTHS = {
    "en": "January February March April May June July August September October November "
          "December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre "
          "décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November "
          "Dezember",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
          "diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre "
          "novembre dicembre",
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro "
          "dezembro",
}
MONTHS = {lang: tuple(names.split()) for lang, names in MONTHS.items()}
WEEKDAYS = {  # Monday first, as datetime.date.weekday() counts
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
}


def _ordinal_en(day: int) -> str:
    suffix = "th" if day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _month(lang: str, d: datetime.date) -> str:
    return MONTHS[lang][d.month - 1]


# Each format: (name, writer of one date). Writers take the date only; the letter case
# of word formats is varied separately (``_CASES``).
FORMATS: tuple[tuple[str, Callable[[datetime.date], str]], ...] = (
    ("en_mdy", lambda d: f"{_month('en', d)} {d.day}, {d.year}"),
    ("en_mdy_ordinal", lambda d: f"{_month('en', d)} {_ordinal_en(d.day)}, {d.year}"),
    ("en_dmy", lambda d: f"{d.day} {_month('en', d)} {d.year}"),
    ("en_mdy_short", lambda d: f"{_month('en', d)[:3]} {d.day}, {d.year}"),
    ("en_dmy_short", lambda d: f"{d.day} {_month('en', d)[:3]} {d.year}"),
    ("en_weekday", lambda d: f"{WEEKDAYS['en'][d.weekday()]}, {_month('en', d)} {d.day}, "
                             f"{d.year}"),
    ("en_dd_mon_yy", lambda d: f"{d.day:02d}-{_month('en', d)[:3]}-{d.year % 100:02d}"),
    ("us_numeric", lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}"),
    ("us_numeric_yy", lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}"),
    ("eu_numeric", lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}"),
    ("de", lambda d: f"{d.day}. {_month('de', d)} {d.year}"),
    ("fr", lambda d: f"{'1er' if d.day == 1 else d.day} {_month('fr', d)} {d.year}"),
    ("fr_weekday", lambda d: f"{WEEKDAYS['fr'][d.weekday()]} {d.day} {_month('fr', d)} "
                             f"{d.year}"),
    ("es", lambda d: f"{d.day} de {_month('es', d)} de {d.year}"),
    ("it", lambda d: f"{d.day} {_month('it', d)} {d.year}"),
    ("pt", lambda d: f"{d.day} de {_month('pt', d)} de {d.year}"),
    ("cjk", lambda d: f"{d.year}年{d.month}月{d.day}日"),
    ("year_first_slash", lambda d: f"{d.year}/{d.month}/{d.day}"),
    ("iso", lambda d: d.isoformat()),
    ("compact", lambda d: f"{d.year}{d.month:02d}{d.day:02d}"),
)
FORMAT_NAMES = tuple(name for name, _ in FORMATS)
_CASES = (str, str, str.lower, str.upper)  # as written (twice as likely), lower, upper

PAD, UNKNOWN = 0, 1  # source ids 0 and 1; characters start at 2
OUTPUT_CHARS = "0123456789-"
EOS = 0  # target id 0 ends a translation (and, as the decoder's first input, starts one)
TARGET_LENGTH = len("YYYY-MM-DD") + 1  # with the end symbol


@functools.cache
def source_alphabet() -> str:
    """Every character a generated sentence can hold, sorted: the source vocabulary
    (ids 2, 3, ...) — fixed by the tables above, not by the samples drawn."""
    words = [w for names in (*MONTHS.values(), *WEEKDAYS.values()) for w in names]
    text = " ".join(words)
    chars = set(text) | set(text.lower()) | set(text.upper()) | set("0123456789 ,./-年月日")
    chars |= set("stndrdth")  # English ordinals
    return "".join(sorted(chars))


def source_vocabulary_size() -> int:
    return len(source_alphabet()) + 2


def target_vocabulary_size() -> int:
    return len(OUTPUT_CHARS) + 1


@functools.cache
def _split_dates(split: str) -> np.ndarray:
    ordinals = np.arange(FIRST.toordinal(), LAST.toordinal() + 1)
    test = ordinals % TEST_EVERY == TEST_RESIDUE
    return ordinals[test if split == "test" else ~test]


def sentences(split: str = "train", n: int | None = None,
          seed: int = 0) -> tuple[list[str], list[str]]:
    """``(sources, targets)``: ``n`` human-written dates of ``split`` and their ISO 8601
    forms. The same ``(split, n, seed)`` gives the same sentences on every machine; the
    default ``n`` is ``SIZES[split]`` (20,000 train, 2,000 test sentences)."""
    if split not in SPLITS:
        raise ArgumentError(f"argument 'split' must be one of {SPLITS}, got {split!r}")
    n = SIZES[split] if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ArgumentError(f"argument 'n' must be a positive int, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"argument 'seed' must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    pool = _split_dates(split)
    picks = pool[rng.integers(0, len(pool), n)]
    formats = rng.integers(0, len(FORMATS), n)
    cases = rng.integers(0, len(_CASES), n)
    sources, targets = [], []
    for ordinal, fmt, case in zip(picks.tolist(), formats.tolist(), cases.tolist(),
                                  strict=True):
        day = datetime.date.fromordinal(ordinal)
        sources.append(_CASES[case](FORMATS[fmt][1](day)))
        targets.append(day.isoformat())
    return sources, targets


def encode_sources(sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, lengths)``: int64 (N, T) source ids, padded with ``PAD`` to the longest
    sentence, and each sentence's length; a character outside the alphabet is
    ``UNKNOWN``."""
    if not sources or any(not isinstance(s, str) or not s for s in sources):
        raise ArgumentError("argument 'sources' must be a non-empty list of non-empty str")
    index = {ch: i + 2 for i, ch in enumerate(source_alphabet())}
    lengths = np.array([len(s) for s in sources], np.int64)
    ids = np.full((len(sources), int(lengths.max())), PAD, np.int64)
    for row, sentence in enumerate(sources):
        ids[row, :len(sentence)] = [index.get(ch, UNKNOWN) for ch in sentence]
    return ids, lengths


def encode_targets(targets: list[str]) -> np.ndarray:
    """int64 (N, ``TARGET_LENGTH``): each ISO date's characters (ids 1..11) then ``EOS``."""
    rows = []
    for t in targets:
        if len(t) != TARGET_LENGTH - 1 or any(ch not in OUTPUT_CHARS for ch in t):
            raise ArgumentError(f"argument 'targets': {t!r} is not a YYYY-MM-DD date")
        rows.append([OUTPUT_CHARS.index(ch) + 1 for ch in t] + [EOS])
    return np.array(rows, np.int64).reshape(len(targets), TARGET_LENGTH)


def decode_targets(ids: np.ndarray) -> list[str]:
    """Target ids (N, L) back to strings, each cut at its first ``EOS``."""
    out = []
    for row in np.asarray(ids).tolist():
        chars = []
        for i in row:
            if i == EOS:
                break
            chars.append(OUTPUT_CHARS[i - 1])
        out.append("".join(chars))
    return out
