"""Text utilities of the memory: tokens for search, an approximate token counter, dates and entities.

Everything here is pure, dependency-free and fast: it runs on every turn when a memory is built and on every query.
The token *counter* is an approximation (about four characters a token, OpenAI's rule of thumb for English); memory
costs are priced from it, and the runtime's own model calls use LiteLLM's exact counter instead.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+")
_CAP = re.compile(r"\b[A-Z][a-zA-Z]+(?:'s)?")
STOPWORDS = frozenset(
    (
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "aren't",
        "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
        "could", "couldn't", "did", "didn't", "do", "does", "doesn't", "doing", "don't", "down", "during",
        "each", "few", "for", "from", "further", "had", "hadn't", "has", "hasn't", "have", "haven't", "having",
        "he", "he'd", "he'll", "he's", "her", "here", "here's", "hers", "herself", "him", "himself", "his",
        "how", "how's", "i", "i'd", "i'll", "i'm", "i've", "if", "in", "into", "is", "isn't", "it", "it's",
        "its", "itself", "let's", "me", "more", "most", "mustn't", "my", "myself", "no", "nor", "not", "of",
        "off", "on", "once", "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over", "own",
        "same", "shan't", "she", "she'd", "she'll", "she's", "should", "shouldn't", "so", "some", "such",
        "than", "that", "that's", "the", "their", "theirs", "them", "themselves", "then", "there", "there's",
        "these", "they", "they'd", "they'll", "they're", "they've", "this", "those", "through", "to", "too",
        "under", "until", "up", "very", "was", "wasn't", "we", "we'd", "we'll", "we're", "we've", "were",
        "weren't", "what", "what's", "when", "when's", "where", "where's", "which", "while", "who", "who's",
        "whom", "why", "why's", "with", "won't", "would", "wouldn't", "you", "you'd", "you'll", "you're",
        "you've", "your", "yours", "yourself", "yourselves", "s", "t", "d", "ll", "m", "re", "ve", "just",
        "also", "really", "so", "yeah", "oh", "hey", "hi", "wow", "got", "get", "gets", "like", "lot", "lots",
        "thing", "things", "much", "many", "one", "ever"
    )
)
# Words that start sentences or questions and are capitalised without naming anything.
_NOT_ENTITIES = frozenset(
    (
        "What", "When", "Where", "Who", "Whom", "Whose", "Which", "Why", "How", "Did", "Does", "Do", "Is",
        "Are", "Was", "Were", "Has", "Have", "Had", "Would", "Could", "Should", "Can", "Will", "The", "A", "An",
        "In", "On", "At", "Of", "For", "And", "But", "Or", "If", "It", "Its", "I", "I'm", "I've", "I'll", "My",
        "We", "Our", "You", "Your", "He", "She", "They", "Their", "His", "Her", "That", "This", "These",
        "Those", "There", "Here", "Yes", "No", "Hey", "Hi", "Oh", "Wow", "Thanks", "Thank", "Sure", "Yeah",
        "Also", "So", "Just", "Well", "Great", "Congrats", "Congratulations", "Ok", "Okay", "Hello", "Bye",
        "Good", "Nice", "Love", "Sounds", "That's", "It's", "What's", "Let's", "Not"
    )
)
MONTHS = (
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
        "november", "december"
)
_MONTH_NO = {m: i + 1 for i, m in enumerate(MONTHS)} | {m[:3]: i + 1 for i, m in enumerate(MONTHS)}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper (plural, -ing, -ed, final e): 'painting', 'painted', 'paints' -> 'paint'."""
    w = word
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif (w.endswith("ed") and len(w) > 4) or (w.endswith("es") and len(w) > 4 and w[-3] in "sxz"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss") and not w.endswith("us"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    return w


def terms(text: str) -> list[str]:
    """Search terms of ``text``: lower-cased words, stop words dropped, stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower().replace("'s ", " ")) if w not in STOPWORDS]


def approx_tokens(text: str) -> int:
    """Approximate model tokens of ``text``: one per four characters, at least one for non-empty text."""
    return (len(text) + 3) // 4


def entities(text: str) -> list[str]:
    """Capitalised names in ``text`` (people, places, titles), lower-cased, without sentence-start words."""
    out: list[str] = []
    for m in _CAP.finditer(text):
        w = m.group(0)
        if w.endswith("'s"):
            w = w[:-2]
        if w in _NOT_ENTITIES or w.lower() in _MONTH_NO or w.lower() in WEEKDAYS:
            continue
        out.append(w.lower())
    return out


_SESSION_DATE = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})", re.I)


def parse_session_date(text: str) -> datetime | None:
    """Parse LoCoMo's session stamp (``"1:56 pm on 8 May, 2023"``) or an ISO date; ``None`` if neither."""
    m = _SESSION_DATE.search(text or "")
    if m:
        hour, minute, ampm, day, month, year = m.groups()
        mon = _MONTH_NO.get(month.lower())
        if mon is None:
            return None
        h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
        try:
            return datetime(int(year), mon, int(day), h, int(minute))
        except ValueError:
            return None
    try:
        return datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None


def fmt_day(d: datetime) -> str:
    """``7 May 2023``."""
    return f"{d.day} {MONTHS[d.month - 1].capitalize()} {d.year}"


def fmt_month(d: datetime) -> str:
    """``May 2023``."""
    return f"{MONTHS[d.month - 1].capitalize()} {d.year}"


_NUM = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "few": 3, "couple": 2}
_REL = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|last night|this morning"
    r"|(?:last|this past|past|next|this) (?:week|weekend|month|year|"
    + "|".join(WEEKDAYS)
    + r")"
    r"|(?:a|an|one|two|three|four|five|six|few|a few|a couple of|couple of|\d+) (?:days?|weeks?|months?|years?) ago)\b",
    re.I,
)


def _shift_month(d: datetime, months: int) -> datetime:
    y, m = divmod(d.month - 1 + months, 12)
    return d.replace(year=d.year + y, month=m + 1, day=1)


def resolve_relative(phrase: str, when: datetime) -> str | None:
    """The absolute date a relative phrase said on ``when`` points to, in the words LoCoMo's gold answers use."""
    p = phrase.lower()
    if p in ("yesterday", "last night"):
        return fmt_day(when - timedelta(days=1))
    if p in ("today", "tonight", "this morning"):
        return fmt_day(when)
    if p == "tomorrow":
        return fmt_day(when + timedelta(days=1))
    words = p.split()
    unit = words[-1]
    if unit == "ago":
        n = _NUM.get(words[0]) or _NUM.get(words[1] if len(words) > 2 else "", 0)
        if words[0].isdigit():
            n = int(words[0])
        unit = words[-2].rstrip("s")
        n = n or 1
        if unit == "day":
            return fmt_day(when - timedelta(days=n))
        if unit == "week":
            return f"the week of {fmt_day(when - timedelta(weeks=n))}"
        if unit == "month":
            return fmt_month(_shift_month(when, -n))
        return str(when.year - n)
    rel = " ".join(words[:-1])
    nxt = rel == "next"
    if unit == "week":
        return f"the week after {fmt_day(when)}" if nxt else f"the week before {fmt_day(when)}"
    if unit == "weekend":
        return f"the weekend after {fmt_day(when)}" if nxt else f"the weekend before {fmt_day(when)}"
    if unit == "month":
        if rel == "this":
            return fmt_month(when)
        return fmt_month(_shift_month(when, 1 if nxt else -1))
    if unit == "year":
        return str(when.year + (0 if rel == "this" else 1 if nxt else -1))
    if unit in WEEKDAYS:
        return f"the {unit} after {fmt_day(when)}" if nxt else f"the {unit} before {fmt_day(when)}"
    return None


def time_notes(text: str, when: datetime | None) -> list[str]:
    """``"yesterday = 7 May 2023"`` for every relative time phrase in ``text`` said on ``when``."""
    if when is None:
        return []
    out: list[str] = []
    for m in _REL.finditer(text):
        abs_ = resolve_relative(m.group(0), when)
        if abs_ is not None:
            out.append(f"{m.group(0)} = {abs_}")
    return out


_CUE = re.compile(r"\b(?:(?:19|20)\d{2}|" + "|".join((*MONTHS, *WEEKDAYS)) + r")\b", re.I)


def has_time_cue(text: str) -> bool:
    """True when ``text`` mentions a year, a month, a weekday or a relative time."""
    return bool(_CUE.search(text)) or bool(_REL.search(text))


# -- answer matching (quality measured with no model) ---------------------------------------------------------
_DATE_DMY = re.compile(r"\b(\d{1,2})\s*(" + "|".join(MONTHS) + r"),?\s*(\d{4})\b")
_DATE_MDY = re.compile(r"\b(" + "|".join(MONTHS) + r")\s+(\d{1,2})(?:st|nd|rd|th)?,?\s*(\d{4})\b")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^a-z0-9\- ]+")


def normalise_answer(text: str) -> str:
    """Lower-case, dates in one form (``2023-05-07``), punctuation and articles dropped, spaces collapsed.

    The same normalisation is applied to the gold answer and to the recalled context, so ``"October 19, 2022"``
    matches ``"19 October 2022"`` (LoCoMo's gold answers write dates both ways).
    """
    low = text.lower()
    low = _DATE_DMY.sub(lambda m: f"{m[3]}-{_MONTH_NO[m[2]]:02d}-{int(m[1]):02d}", low)
    low = _DATE_MDY.sub(lambda m: f"{m[3]}-{_MONTH_NO[m[1]]:02d}-{int(m[2]):02d}", low)
    low = _PUNCT.sub(" ", low)
    low = _ARTICLES.sub(" ", low)
    return " ".join(low.split())
