"""A translation task generated offline: dates written in English, in many styles, into ISO 8601.

    "tuesday, the twenty-first of march, nineteen eighty-seven"  ->  "1987-03-21"
    "3/21/1987"  ->  "1987-03-21"        "21 mar 1987"  ->  "1987-03-21"

Like a real language pair it needs more than a word-for-word lookup: words reorder (the year comes first),
spelt-out numbers become digits ("twenty-first" -> "21", "nineteen eighty-seven" -> "1987"), a month name
or abbreviation becomes a number, and a weekday is read and dropped. The split is by content: every date in
the held-out years (one year in ten, chosen by seed) is only ever seen at test time, so exact-match there
measures whether the model learned to read numbers, not whether it remembered sentences.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")  # fmt: skip
ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")  # fmt: skip
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORDINAL_ONES = ("zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
                "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
                "seventeenth", "eighteenth", "nineteenth")  # fmt: skip
ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FIRST_YEAR, LAST_YEAR = 1900, 2099


def cardinal(n: int) -> str:
    """0..99 in words: 7 -> "seven", 42 -> "forty-two"."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + ("" if ones == 0 else "-" + ONES[ones])


def ordinal(n: int) -> str:
    """1..31 as an ordinal word: 21 -> "twenty-first", 30 -> "thirtieth"."""
    if n < 20:
        return ORDINAL_ONES[n]
    if n in ORDINAL_TENS:
        return ORDINAL_TENS[n]
    return TENS[n // 10] + "-" + ORDINAL_ONES[n % 10]


def ordinal_suffix(n: int) -> str:
    """21 -> "21st", 12 -> "12th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def year_words(year: int, rng: random.Random) -> str:
    """1987 -> "nineteen eighty-seven"; 2005 -> "two thousand and five" or "two thousand five"; 1900 -> "nineteen
    hundred"; 2012 -> "twenty twelve" or "two thousand twelve"; 1905 -> "nineteen oh five"."""
    high, low = divmod(year, 100)
    if year >= 2000 and low < 10 or year >= 2010 and rng.random() < 0.5:
        return "two thousand" + ("" if low == 0 else rng.choice([" and ", " "]) + cardinal(low))
    if low == 0:
        return cardinal(high) + " hundred"
    return cardinal(high) + " " + (("oh " + ONES[low]) if low < 10 else cardinal(low))


def _formats(d: datetime.date, rng: random.Random) -> list[Callable[[], str]]:
    m, month, day, year = d.month, MONTHS[d.month - 1], d.day, d.year
    weekday = WEEKDAYS[d.weekday()]
    return [
        lambda: f"{month} {day}, {year}",
        lambda: f"{day} {month} {year}",
        lambda: f"{month[:3]} {day} {year}",
        lambda: f"{day} {month[:3]} {year}",
        lambda: f"{m}/{day}/{year}",
        lambda: f"{weekday}, {month} {ordinal_suffix(day)}, {year}",
        lambda: f"the {ordinal(day)} of {month}, {year_words(year, rng)}",
        lambda: f"{weekday}, the {ordinal(day)} of {month}, {year_words(year, rng)}",
        lambda: f"{month} the {ordinal(day)}, {year_words(year, rng)}",
        lambda: f"{ordinal_suffix(day)} of {month} {year}",
        lambda: f"{year} {month} {day}",
    ]


def english(d: datetime.date, rng: random.Random) -> str:
    """The date in one of eleven English styles, picked by `rng`."""
    return rng.choice(_formats(d, rng))()


def iso(d: datetime.date) -> str:
    return d.isoformat()  # "1987-03-21"


def held_out_years(seed: int = 0) -> frozenset[int]:
    """One year in ten (20 of 1900..2099), the same for every run with this seed."""
    years = list(range(FIRST_YEAR, LAST_YEAR + 1))
    return frozenset(random.Random(seed).sample(years, len(years) // 10))


def sample_pairs(n: int, seed: int, held_out: bool, split_seed: int = 0) -> list[tuple[str, str]]:
    """`n` (English, ISO) pairs with dates drawn uniformly from the training years or from the held-out ones."""
    rng = random.Random(seed)
    years = held_out_years(split_seed)
    pool = sorted(years) if held_out else [y for y in range(FIRST_YEAR, LAST_YEAR + 1) if y not in years]
    pairs = []
    for _ in range(n):
        year = rng.choice(pool)
        d = datetime.date(year, 1, 1) + datetime.timedelta(days=rng.randrange(365 + (year % 4 == 0)))
        pairs.append((english(d, rng), iso(d)))
    return pairs
