"""One CXR DICOM file → header fields (without decoding pixels) or → pixels in presentation order.

Errors raised here carry fixed, non-identifying reasons (never a header value), so that they can be
written to rejects reports and logs as they are.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.charset import convert_encodings
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.tag import Tag
from pydicom.valuerep import VR
from pydicom.values import convert_value

from radscreen.io.errors import ImageReadError

PIXEL_DATA = Tag(0x7FE0, 0x0010)
PIXEL_DATA_TAG_BYTES = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
UNDEFINED_LENGTH = 0xFFFFFFFF
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_TAIL_BYTES = 64 * 1024
_DEFER_BYTES = 1024  # elements larger than this (the pixels) are not read
# Parsing only these tags (pydicom's specific_tags) keeps the scan faster than a plain header read.
HEADER_KEYWORDS = (
    "PatientID", "PatientBirthDate", "PatientAge", "PatientSex", "StudyDate", "AcquisitionDate", "ContentDate",
    "ViewPosition", "BodyPartExamined", "Modality", "Rows", "Columns", "SamplesPerPixel", "BitsAllocated",
    "BitsStored", "NumberOfFrames", "PhotometricInterpretation", "SOPInstanceUID", "PixelData",
)
_HEADER_TAGS = {keyword: Tag(keyword) for keyword in HEADER_KEYWORDS}  # as tags: dcmread skips the look-ups


class DicomReadError(ImageReadError):
    """A DICOM file that cannot be used; str(error) is a one-line reason without header values."""


@dataclass(frozen=True)
class DicomHeader:
    """Header fields needed for a manifest row. Identifying fields stay in memory only."""

    patient_id: str
    birth_date: str
    study_date: str
    patient_age: str
    patient_sex: str
    view_position: str
    body_part: str  # BodyPartExamined, upper case ("" when absent)
    modality: str
    rows: int
    columns: int
    photometric: str
    transfer_syntax: str
    transfer_syntax_name: str
    bits_stored: int
    sop_instance_uid: str
    samples_per_pixel: int = 1  # 3 for RGB / YBR
    frames: int = 1  # NumberOfFrames


def _header_values(ds: pydicom.Dataset) -> dict[str, object]:
    """The value of each header keyword present (the pixel data aside).

    Explicit-VR elements go straight to pydicom's value converter (pydicom.values.convert_value, as
    Dataset access does, without its per-access layers: a third of the scan's time); implicit-VR or UN
    elements, and any the converter refuses, take the Dataset's own path.
    """
    encodings = convert_encodings(ds.get("SpecificCharacterSet"))
    values = {}
    for keyword, tag in _HEADER_TAGS.items():
        element = ds.get_item(tag) if tag != PIXEL_DATA else None
        if element is None:
            continue
        if isinstance(element, RawDataElement) and element.VR not in (None, VR.UN):
            try:
                values[keyword] = convert_value(element.VR, element, encodings)
                continue
            except Exception:  # noqa: BLE001 - pydicom's own path decides (fixes, warnings or errors)
                pass
        values[keyword] = ds[tag].value
    return values


def _text(ds: pydicom.Dataset | Mapping[str, object], keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _int(ds: pydicom.Dataset | Mapping[str, object], keyword: str) -> int:
    try:
        return int(ds.get(keyword, 0) or 0)
    except (TypeError, ValueError):
        return 0


def _check_pixel_data(ds: pydicom.Dataset, fields: Mapping[str, object], path: Path, file_size: int) -> None:
    """Raise DicomReadError when the pixel data element is missing or the file ends inside it (`fields`: the
    header's values, from _header_values)."""
    raw = ds._dict.get(PIXEL_DATA)  # the deferred (unread) element: offset and length only
    if raw is None:
        # pydicom drops an element cut off by the end of the file: if the tag is in the bytes, it was truncated
        if PIXEL_DATA_TAG_BYTES in path.read_bytes():
            raise DicomReadError("truncated file (pixel data incomplete)")
        raise DicomReadError("no pixel data")
    value_tell = getattr(raw, "value_tell", None)
    length = getattr(raw, "length", None)
    if value_tell is None or length is None:  # small element that was read: check its size below
        length = len(raw.value or b"")
        value_tell = 0
    if length == 0:
        raise DicomReadError("no pixel data")
    if length == UNDEFINED_LENGTH:  # encapsulated (compressed): the file must end with its delimiter
        with open(path, "rb") as fp:
            fp.seek(max(0, file_size - _TAIL_BYTES))
            if SEQUENCE_DELIMITER not in fp.read():
                raise DicomReadError("truncated file (pixel data incomplete)")
        return
    if value_tell + length > file_size:
        raise DicomReadError("truncated file (pixel data incomplete)")
    frames = _int(fields, "NumberOfFrames") or 1
    expected = (
        _int(fields, "Rows") * _int(fields, "Columns") * (_int(fields, "SamplesPerPixel") or 1)
        * _int(fields, "BitsAllocated") * frames + 7
    ) // 8
    if expected and length < expected:
        raise DicomReadError("truncated pixel data (shorter than rows x columns)")


@functools.lru_cache(maxsize=64)
def _decodable(uid: str) -> bool:
    """Whether an installed pydicom decoder reads this transfer syntax (asked once per syntax)."""
    try:
        return get_decoder(uid).is_available
    except (NotImplementedError, ValueError):
        return False


def _transfer_syntax(ds: pydicom.Dataset) -> pydicom.uid.UID:
    """The file's transfer syntax (Implicit VR Little Endian, DICOM's default, when its meta header has none)."""
    uid = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    return pydicom.uid.ImplicitVRLittleEndian if uid is None else pydicom.uid.UID(uid)


def _check_transfer_syntax(ds: pydicom.Dataset) -> tuple[str, str]:
    uid = _transfer_syntax(ds)
    name = getattr(uid, "name", str(uid))
    if not _decodable(uid):
        raise DicomReadError(f"unreadable transfer syntax ({name})")
    return str(uid), name


def read_header(path: str | os.PathLike) -> DicomHeader:
    """Read a DICOM file's header without decoding (or even reading) its pixels.

    Raises DicomReadError with a fixed reason: not DICOM, unreadable header, no pixel data,
    truncated file, unreadable transfer syntax.
    """
    path = Path(path)
    try:
        file_size = path.stat().st_size
        with warnings.catch_warnings():  # pydicom warns about truncation; we report our own reason instead
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size=_DEFER_BYTES, specific_tags=list(_HEADER_TAGS.values()))
    except InvalidDicomError as exc:
        raise DicomReadError("not DICOM") from exc
    except (OSError, EOFError) as exc:
        raise DicomReadError("unreadable file") from exc
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise DicomReadError("unreadable DICOM header") from exc
    fields = _header_values(ds)
    _check_pixel_data(ds, fields, path, file_size)
    ts_uid, ts_name = _check_transfer_syntax(ds)
    return DicomHeader(
        patient_id=_text(fields, "PatientID"),
        birth_date=_text(fields, "PatientBirthDate"),
        study_date=_text(fields, "StudyDate") or _text(fields, "AcquisitionDate") or _text(fields, "ContentDate"),
        patient_age=_text(fields, "PatientAge"),
        patient_sex=_text(fields, "PatientSex"),
        view_position=_text(fields, "ViewPosition"),
        body_part=_text(fields, "BodyPartExamined").upper(),
        modality=_text(fields, "Modality").upper(),
        rows=_int(fields, "Rows"),
        columns=_int(fields, "Columns"),
        photometric=_text(fields, "PhotometricInterpretation").upper(),
        transfer_syntax=ts_uid,
        transfer_syntax_name=ts_name,
        bits_stored=_int(fields, "BitsStored"),
        sop_instance_uid=_text(fields, "SOPInstanceUID"),
        samples_per_pixel=_int(fields, "SamplesPerPixel") or 1,
        frames=_int(fields, "NumberOfFrames") or 1,
    )


def read_stored(path: str | os.PathLike, raw_bits: bool = False) -> tuple[np.ndarray, pydicom.Dataset]:
    """Decode a single-frame greyscale radiograph's stored values (2-D, before any LUT) and its dataset.

    raw_bits: uncompressed pixel data (reads_raw_codes) comes as a read-only view of the file's bytes, bits above
    BitsStored included (pass them through correct_unused_bits for the stored values), instead of a corrected copy;
    compressed data is decoded as pydicom does by default either way. Raises DicomReadError on anything that cannot
    be decoded.
    """
    try:
        ds = pydicom.dcmread(path)
        if raw_bits and reads_raw_codes(ds):
            ds.pixel_array_options(view_only=True, correct_unused_bits=False)
        pixels = ds.pixel_array
    except Exception as exc:
        raise DicomReadError("pixel data could not be decoded") from exc
    if pixels.ndim != 2:
        raise DicomReadError(f"not a single-frame greyscale image (shape {pixels.ndim}-D)")
    return pixels, ds


def reads_raw_codes(ds: pydicom.Dataset) -> bool:
    """Whether read_stored(raw_bits=True) gives this file's codes untrimmed: uncompressed pixel data only. Decoded
    compressed data is a fresh array anyway, and pydicom corrects JPEG 2000 and signed JPEG-LS by the codestream's
    own precision rather than by BitsStored, which correct_unused_bits would not reproduce."""
    return not _transfer_syntax(ds).is_compressed


def correct_unused_bits(codes: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    """Pixel codes → stored values: the bits above BitsStored dropped (sign-extended for signed data), as pydicom's
    pixel_array does by default (DICOM PS3.5 8.1.1: those bits are undefined); element by element."""
    width, bits_stored = 8 * codes.dtype.itemsize, _int(ds, "BitsStored")
    if codes.dtype.kind not in "iu" or not 0 < bits_stored < width or _int(ds, "BitsAllocated") != width:
        return codes
    shift = width - bits_stored
    return np.right_shift(np.left_shift(codes, shift), shift)


def read_pixels(path: str | os.PathLike, apply_voi: bool = False) -> np.ndarray:
    """Decode a single-frame greyscale radiograph to a 2-D array where bright means dense.

    Applies the Modality LUT (rescale slope/intercept or LUT), optionally the VOI LUT / window,
    and inverts MONOCHROME1 so that every image has MONOCHROME2 polarity. Integer images stay
    integer when no rescale is present (so exact histogram percentiles apply); otherwise float64.
    Raises DicomReadError on anything that cannot be decoded.
    """
    pixels, ds = read_stored(path)
    return to_presentation(pixels, ds, apply_voi)


def to_presentation(stored: np.ndarray, ds: pydicom.Dataset, apply_voi: bool = False,
                    present: np.ndarray | None = None, raw_bits: bool = False) -> np.ndarray:
    """Stored values → values where bright means dense (Modality LUT, optional VOI LUT, MONOCHROME1 inverted).

    Element by element, so `stored` may be the image or a table of stored values; for a table, `present`
    (boolean, same shape) marks the values the image holds, whose range the MONOCHROME1 inversion uses.
    raw_bits: `stored` holds pixel codes as read_stored(raw_bits=True) gives them (correct_unused_bits first, for
    the files it reads untrimmed).
    """
    pixels = apply_modality_lut(correct_unused_bits(stored, ds) if raw_bits and reads_raw_codes(ds) else stored, ds)
    if apply_voi:
        pixels = apply_voi_lut(pixels, ds, prefer_lut=True)
    if _text(ds, "PhotometricInterpretation").upper() == "MONOCHROME1":
        pixels = invert_monochrome1(pixels, None if present is None else pixels[present])
    return pixels


def invert_monochrome1(pixels: np.ndarray, range_of: np.ndarray | None = None) -> np.ndarray:
    """Flip polarity within the image's own range (min ↔ max), keeping the dtype; the range is that of
    `range_of` when given (the image's values, when `pixels` is a table of them)."""
    range_of = pixels if range_of is None else range_of
    low, high = range_of.min(), range_of.max()
    if np.issubdtype(pixels.dtype, np.integer):
        wide = pixels.astype(np.int64)
        return (int(high) + int(low) - wide).astype(pixels.dtype)
    return high + low - pixels
