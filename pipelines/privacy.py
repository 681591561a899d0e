"""Personal data never stored: person/contact columns are dropped, phone and ID-card numbers in
any other column are masked, and reporters' phones become a salted key for repeat counting.

What counts as personal (Chinese formats, after NFKC so full-width digits ``１３８…`` count):

* mobiles ``13812345678``, ``138-1234-5678``, ``138 1234 5678``, with ``+86``/``0086``/``86``;
* landlines ``0471-1234567``, ``(0471)1234567``, ``010 12345678``, ``+86 471 1234567``;
* ID-card numbers: 18 characters (17 digits + digit or ``X``) whose checksum is right or whose
  birth date is plausible, and the old 15-digit form with a plausible ``YYMMDD`` (born 1920–1999).

Columns are judged by name (姓名, 负责人, 业主, 联系人, 电话, 身份证, lxdh, zjhm, xm, sfzh, name,
phone, contact …, except the contract's place-name columns such as ``street_name``) and by
content: a column of any dtype (integers too) whose values are mostly phone or ID numbers is
dropped like a named one. The salt of the reporter key lives in ``<project>/.gridgov-salt``,
never in the database.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SALT_FILE = ".gridgov-salt"

# -- column names -------------------------------------------------------------------------------
# Chinese fragments: a column whose name contains one of these holds a person or their contact.
PERSON_ZH = ("姓名", "名字", "负责人", "业主", "户主", "联系人", "联系电话", "联系方式", "电话", "手机",
             "身份证", "证件", "住址", "家庭地址", "地址", "微信", "邮箱", "举报人", "投诉人", "反映人", "来电人",
             "当事人", "报警人", "诉求人", "申请人", "网格员姓名", "护照")
PHONE_ZH = ("电话", "手机", "联系方式")
# ASCII words (whole tokens of the name) and longer fragments (anywhere in the name).
PERSON_TOKENS = {"name", "xm", "xingming", "lxdh", "lxr", "lxfs", "dh", "sjh", "sjhm", "zjhm", "zjh", "sfz",
                 "sfzh", "sfzhm", "fzr", "tel", "phone", "mobile", "cell", "contact", "email", "mail", "wechat",
                 "weixin", "wx", "qq", "passport", "owner", "person", "addr", "address", "surname"}
PERSON_FRAGMENTS = ("phone", "mobile", "idcard", "id_card", "id_no", "idno", "id_number", "idnumber",
                    "passport", "email", "wechat", "telephone", "contact", "address", "username", "fullname",
                    "realname", "surname", "firstname", "lastname")
PHONE_TOKENS = {"tel", "phone", "mobile", "cell", "lxdh", "dh", "sjh", "sjhm", "lxfs"}
PHONE_FRAGMENTS = ("phone", "mobile", "telephone")
# A "name" column is a place's name, not a person's, when another word of it names a place.
PLACE_WORDS = {"street", "community", "district", "unit", "building", "bldg", "road", "compound", "estate",
               "shop", "store", "company", "enterprise", "department", "dept", "grid", "village", "project",
               "category", "type", "place", "poi", "school", "hospital", "org", "organization", "area", "zone",
               "city", "county", "station", "file", "layer", "field", "service", "market", "park", "site"}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def is_person_column(name: str) -> bool:
    """Whether a column called ``name`` holds a person's name, contact or identity number."""
    text = unicodedata.normalize("NFKC", str(name))
    if any(f in text for f in PERSON_ZH):
        return True
    low = text.lower()
    if any(f in low for f in PERSON_FRAGMENTS):
        return True
    tokens = _tokens(text)
    joined = "_".join(tokens)
    if any(f in joined for f in ("id_card", "id_no", "id_number", "cert_no")):
        return True
    hits = PERSON_TOKENS.intersection(tokens)
    if hits == {"name"} and PLACE_WORDS.intersection(tokens):
        return False
    return bool(hits) or contains_pii(text)


def is_phone_column(name: str) -> bool:
    """Whether a (person) column called ``name`` holds phone numbers."""
    text = unicodedata.normalize("NFKC", str(name))
    low = text.lower()
    return (any(f in text for f in PHONE_ZH) or any(f in low for f in PHONE_FRAGMENTS)
            or bool(PHONE_TOKENS.intersection(_tokens(text))))


# -- values -------------------------------------------------------------------------------------
_SEP = r"[ \-]?"
_MOBILE = (r"(?<![0-9])(?:\(?(?:\+|00)?86\)?" + _SEP + r")?1[3-9][0-9]" + _SEP + r"[0-9]{4}" + _SEP
           + r"[0-9]{4}(?![0-9])")
_LANDLINE = (r"(?<![0-9])(?:(?:\+|00)86" + _SEP + r"\(?0?[1-9][0-9]{1,2}\)?|\(?0[1-9][0-9]{1,2}\)?)"
             + _SEP + r"[0-9]{7,8}(?![0-9])")
_DATE8 = r"(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_DATE6 = r"[2-9][0-9](?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_ID18 = r"(?<![0-9A-Za-z])[1-9][0-9]{5}" + _SEP + r"[0-9]{8}" + _SEP + r"[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
_ID15 = r"(?<![0-9A-Za-z])[1-9][0-9]{5}" + _DATE6 + r"[0-9]{3}(?![0-9A-Za-z])"
PII_RE = re.compile("|".join(f"(?:{p})" for p in (_ID18, _ID15, _MOBILE, _LANDLINE)))
MASK = "***"
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = "10X98765432"


def id18_checksum_ok(number: str) -> bool:
    """GB 11643 check character of an 18-character ID number."""
    n = re.sub(r"[ \-]", "", number).upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", n):
        return False
    total = int(np.dot(_ID_WEIGHTS, [int(c) for c in n[:17]]))
    return _ID_CHECK[total % 11] == n[17]


def _is_pii_match(m: re.Match) -> bool:
    text = m.group(0)
    digits = re.sub(r"[ \-()+]", "", text)
    if len(digits) == 18 and re.fullmatch(r"[0-9]{17}[0-9Xx]", digits):
        return id18_checksum_ok(digits) or re.fullmatch(r"[0-9]{6}" + _DATE8 + r"[0-9]{3}[0-9Xx]", digits) is not None
    return True


def _sub(text: str) -> tuple[str, int]:
    count = 0

    def repl(m: re.Match) -> str:
        nonlocal count
        if _is_pii_match(m):
            count += 1
            return MASK
        return m.group(0)

    return PII_RE.sub(repl, text), count


# Full-width digits, plus, brackets, dashes and spaces to ASCII, one character for one, so a match
# in the folded text is at the same place in the original.
_FOLD = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)}, "＋": "+", "（": "(", "）": ")",
                       "－": "-", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "　": " ", "\u00a0": " ",
                       "Ｘ": "X", "ｘ": "x"})


def contains_pii(text) -> bool:
    """Whether ``text`` holds a phone or ID-card number (any width of digits)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return False
    return _sub(str(text).translate(_FOLD))[1] > 0


def mask_text(text):
    """``text`` with every phone and ID-card number replaced by ``***``; everything else is kept
    exactly as written (full-width punctuation included)."""
    if not isinstance(text, str):
        return text
    folded = text.translate(_FOLD)
    pieces, last, n = [], 0, 0
    for m in PII_RE.finditer(folded):
        if _is_pii_match(m):
            pieces += [text[last:m.start()], MASK]
            last, n = m.end(), n + 1
    return "".join(pieces) + text[last:] if n else text


# The same patterns for RE2 (pyarrow, vectorised): no look-behind, so boundaries are matched as
# characters; used only to find the cells that need the exact Python pass above.
_D = r"[ \-\x{2010}-\x{2014}]?"
_RE2_DETECT = "|".join([
    r"(?:^|[^0-9])(?:\(?(?:\+|00)?86\)?" + _D + r")?1[3-9][0-9]" + _D + r"[0-9]{4}" + _D + r"[0-9]{4}(?:[^0-9]|$)",
    r"(?:^|[^0-9])(?:(?:\+|00)86" + _D + r"\(?0?[1-9][0-9]{1,2}\)?|\(?0[1-9][0-9]{1,2}\)?)" + _D
    + r"[0-9]{7,8}(?:[^0-9]|$)",
    r"(?:^|[^0-9A-Za-z])[1-9][0-9]{5}" + _D + r"[0-9]{8}" + _D + r"[0-9]{3}[0-9Xx](?:[^0-9A-Za-z]|$)",
    r"(?:^|[^0-9A-Za-z])[1-9][0-9]{5}" + _DATE6 + r"[0-9]{3}(?:[^0-9A-Za-z]|$)",
])


def _candidates(text: pd.Series) -> np.ndarray:
    """Cells that may hold a phone or ID number: one RE2 pass over NFKC text (full-width digits fold)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(text.astype("string[pyarrow]").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    hit = pc.match_substring_regex(pc.utf8_normalize(arr, "NFKC"), _RE2_DETECT)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def mask_series(s: pd.Series) -> tuple[pd.Series, int]:
    """Mask personal numbers in a text series (any dtype holding strings); returns the series and the
    number of cells changed. A vectorised RE2 pass finds candidate cells; only those go through
    :func:`mask_text`, so the cost grows with the rows, not with rows × matches."""
    if len(s) == 0:
        return s, 0
    text = s.astype("string")
    cand = _candidates(text)
    if not cand.any():
        return s, 0
    idx = np.flatnonzero(cand)
    before = text.iloc[idx].tolist()
    vals = [mask_text(v) for v in before]
    changed = np.array([v != o for v, o in zip(vals, before)], dtype=bool)
    if not changed.any():
        return s, 0
    out = s.astype(object).copy() if not pd.api.types.is_string_dtype(s.dtype) else s.copy()
    pos = idx[changed]
    out.iloc[pos] = [vals[i] for i in np.flatnonzero(changed)]
    return out, int(changed.sum())


def mask_frame_values(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every phone or ID number in any column masked: ``***`` inside text, and numbers
    that are phone or ID numbers written as text ``***`` (a copy if anything changed)."""
    out = frame
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            m = pii_number_mask(s)
            if m.any():
                out = out.copy() if out is frame else out
                out[col] = s.astype(object).where(~m, MASK)
            continue
        masked, n = mask_series(s)
        if n:
            out = out.copy() if out is frame else out
            out[col] = masked
    return out


def pii_number_mask(s: pd.Series) -> np.ndarray:
    """For a numeric series: which values are phone or ID numbers written as numbers."""
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(num) & (np.abs(num) >= 1e6) & (np.abs(num) < 1e19)
    out = np.zeros(len(s), dtype=bool)
    if not ok.any():
        return out
    idx = np.flatnonzero(ok)
    as_int = [str(int(v)) for v in num[idx]]
    out[idx] = [_sub(v)[1] > 0 for v in as_int]
    return out


def phone_digits(s: pd.Series) -> pd.Series:
    """Digits of a phone column (NFKC), mobiles without the +86/0086 prefix; None where empty."""
    from pipelines.dates import nfkc

    text = nfkc(s).str.replace(r"\.0$", "", regex=True)
    d = text.str.replace(r"[^0-9]", "", regex=True)
    d = d.str.replace(r"^(?:0086|86)(1[3-9][0-9]{9})$", r"\1", regex=True)
    return d.where(d.str.len() > 0)


def reporter_key(s: pd.Series, salt: bytes) -> list:
    """A salted 16-hex-digit key per phone number (same phone, same key; not reversible without
    the salt file)."""
    return [hashlib.sha256(salt + d.encode()).hexdigest()[:16] if isinstance(d, str) else None
            for d in phone_digits(s).tolist()]


# -- salt ---------------------------------------------------------------------------------------
def salt_for(project_dir: str | Path) -> bytes:
    """The project's salt for reporter keys: ``<project>/.gridgov-salt``, created (mode 0600) on
    first use. It never enters the database; deleting it makes new keys unlinkable to old ones."""
    path = Path(project_dir) / SALT_FILE
    if not path.exists():
        token = secrets.token_hex(16)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(token + "\n")
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
    text = path.read_text().strip()
    if not text:
        raise ValueError(f"{path} is empty; delete it to create a new salt")
    return text.encode()


def redact_settings(settings: dict) -> dict:
    """A copy of ``settings`` without secrets (``[privacy] salt``), fit to store in ``runs``."""
    out = dict(settings)
    if isinstance(out.get("privacy"), dict):
        out["privacy"] = {k: v for k, v in out["privacy"].items() if k != "salt"}
    return out


# -- a whole frame ------------------------------------------------------------------------------
@dataclass
class PrivacyReport:
    dropped: list[str] = field(default_factory=list)  # columns dropped (user's names)
    masked: dict[str, int] = field(default_factory=dict)  # column -> cells masked
    hashed_from: str | None = None  # the phone column that became reporter_key


def strip_frame(frame: pd.DataFrame, *, keep: set[str], protected: set[str], salt: bytes | None,
                hash_phones: bool) -> tuple[pd.DataFrame, PrivacyReport]:
    """Drop person columns, mask personal numbers, optionally hash the first phone column.

    Parameters
    ----------
    keep
        Column names that are never dropped by name (the contract's columns, place names).
    protected
        Column names whose values are not masked (ids, codes, times, counts of the contract).
    hash_phones
        Turn the first phone column into ``reporter_key`` (incidents).
    """
    rep = PrivacyReport()
    out = frame
    drop: list[str] = []
    for col in frame.columns:
        if col.startswith("__") or col in keep:
            continue
        if is_person_column(col):
            drop.append(col)
            continue
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            m = pii_number_mask(s)
            if m.any() and m.sum() >= 0.5 * s.notna().sum():
                drop.append(col)  # a phone / ID column under an innocent name
            elif m.any():
                out = out.copy() if out is frame else out
                out[col] = s.astype(object).where(~m, None)
                rep.masked[col] = int(m.sum())
    for col in drop:
        s = frame[col]
        if hash_phones and rep.hashed_from is None and "reporter_key" not in frame.columns and (
                is_phone_column(col) or pd.api.types.is_numeric_dtype(s.dtype)):
            out = out.copy() if out is frame else out
            out["reporter_key"] = reporter_key(s, salt or b"")
            rep.hashed_from = col
    if drop:
        out = out.drop(columns=drop)
        rep.dropped = drop
    for col in out.columns:
        if col.startswith("__") or col in protected or col == "reporter_key":
            continue
        s = out[col]
        if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
            continue
        masked, n = mask_series(s)
        if n:
            out = out.copy() if out is frame else out
            out[col] = masked
            rep.masked[col] = rep.masked.get(col, 0) + n
    return out, rep
