"""Pure avatar code: initials, palette, coverage, SVG, PNG, validators (no database)."""

from __future__ import annotations

import io
import re
import unicodedata
import xml.etree.ElementTree as ET

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageFont, features

from crm import avatars
from crm.avatars import Avatar
from crm.lib.avatar_bench import run_avatar_benchmark

SVG_NS = "{http://www.w3.org/2000/svg}"

INITIALS = [
    # plain, multi-word, hyphenated, apostrophe
    ("Anna", "Müller", "AM"),
    ("anna", "müller", "AM"),
    ("Mary Ann", "Smith Jones", "MS"),
    ("Jean-Luc", "Picard", "JP"),
    ("Ciara", "O'Brien", "CO"),
    ("'Anna", "d'Alembert", "AD"),
    # accents, composed and decomposed (NFC gives the same single unit)
    ("Émile", "Zola", "ÉZ"),
    ("E\u0301mile", "Zola", "ÉZ"),
    ("ångström", "øre", "ÅØ"),
    ("n\u0308ora", "x", "N\u0308X"),  # no precomposed form: letter and mark stay one unit
    # skipped leading non-letters: digits, punctuation, emoji, joined emoji
    ("3M", "(Müller)", "MM"),
    ("😀 Anna", "Berg", "AB"),
    ("👩‍👩‍👧Anna", "👍🏽Berg", "AB"),
    ("🏳️‍🌈", "Berg", "B"),
    ("👩‍💻", "🧑🏿‍🚀", ""),
    # Greek, Cyrillic
    ("ελένη", "παπαδοπούλου", "ΕΠ"),
    ("жанна", "щукина", "ЖЩ"),
    # CJK, Hangul, kana: the family name's first character alone
    ("小明", "王", "王"),
    ("小明", "欧阳", "欧"),
    ("", "王小明", "王"),
    ("王小明", "", "王"),
    ("민준", "김", "김"),
    ("서연", "남궁", "남"),
    ("\u1106\u1175\u11ab\u110c\u116e\u11ab", "\u1100\u1175\u11b7", "김"),  # conjoining jamo
    ("太郎", "山田", "山"),
    ("さくら", "やまだ", "や"),
    # Arabic and Hebrew: logical order, right-to-left rendering
    ("محمد", "علي", "مع"),
    ("فاطمة", "الزهراء", "فا"),
    ("דוד", "בן-גוריון", "דב"),
    # Turkish: İ for i and I for ı when the name has Turkic letters
    ("ilker", "şen", "İŞ"),
    ("ılgın", "yılmaz", "IY"),
    ("İsmail", "kaya", "İK"),
    ("iğde", "kara", "İK"),
    ("iris", "smith", "IS"),
    # empty, whitespace-only, markup
    ("", "", ""),
    ("   ", "\t\n\u00a0", ""),
    ("<script>alert(1)</script>", "&amp;", "SA"),
    ('"><svg onload=x>', "</text>", "ST"),
    ("!!!", "123", ""),
]


@pytest.mark.parametrize(("first", "last", "expected"), INITIALS)
def test_initials(first: str, last: str, expected: str) -> None:
    assert avatars.initials(first, last) == unicodedata.normalize("NFC", expected)


def test_decomposed_and_composed_names_draw_the_same_avatar() -> None:
    assert avatars.avatar_for(5, "E\u0301mile", "Zola") == avatars.avatar_for(5, "Émile", "Zola")


@given(st.text(), st.text())
def test_initials_are_whole_letter_clusters(first: str, last: str) -> None:
    clusters = avatars.initial_clusters(first, last)
    assert len(clusters) <= 2
    for cluster in clusters:
        assert len(regex.findall(r"\X", cluster)) == 1
        assert unicodedata.category(cluster[0]) in {"Lu", "Ll", "Lt", "Lo"}


@settings(deadline=None)  # the first example loads the CJK font's cmap (a few hundred ms)
@given(st.text(), st.text(), st.integers(min_value=0, max_value=2**63 - 1))
def test_any_name_gives_an_avatar_and_valid_svg(first: str, last: str, contact_id: int) -> None:
    avatar = avatars.avatar_for(contact_id, first, last)
    ET.fromstring(avatars.render_svg(avatar))


def test_turkic_rule() -> None:
    assert avatars.is_turkic("Ayşe", "Demir")
    assert avatars.is_turkic("Irmak", "Yılmaz")
    assert not avatars.is_turkic("Ingrid", "Smith")


def test_upper_case_that_would_split_keeps_the_letter() -> None:
    assert avatars.initials("ßara", "x") == "ßX"


# --- colour ---------------------------------------------------------------------------


def test_palette_is_large_and_distinct() -> None:
    assert len(avatars.PALETTE) >= 12
    assert len(set(avatars.PALETTE)) == len(avatars.PALETTE)
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in avatars.PALETTE)


@pytest.mark.parametrize("background", avatars.PALETTE)
def test_every_palette_colour_meets_wcag_aa(background: str) -> None:
    foreground = avatars.text_colour(background)
    assert foreground in (avatars.BLACK, avatars.WHITE)
    assert avatars.contrast_ratio(background, foreground) >= 4.5


def test_contrast_ratio_reference_values() -> None:
    assert avatars.contrast_ratio("#FFFFFF", "#000000") == pytest.approx(21)
    assert avatars.contrast_ratio("#777777", "#FFFFFF") == pytest.approx(4.48, abs=0.01)


def test_colour_is_stable_and_neighbours_differ() -> None:
    for contact_id in range(10_000):
        assert avatars.colours(contact_id) == avatars.colours(contact_id)
        assert avatars.colours(contact_id)[0] != avatars.colours(contact_id + 1)[0]
    # Pinned: the colour must not change between releases or processes.
    assert avatars.colours(0)[0] == avatars.PALETTE[0]
    assert avatars.colours(7)[0] == avatars.PALETTE[35 % 12]


def test_every_palette_colour_is_used() -> None:
    used = {avatars.colours(i)[0] for i in range(len(avatars.PALETTE))}
    assert used == set(avatars.PALETTE)


def test_colour_ignores_the_name() -> None:
    a = avatars.avatar_for(42, "Anna", "Berg")
    b = avatars.avatar_for(42, "Zeynep", "Öz")
    assert (a.background, a.foreground) == (b.background, b.foreground)


# --- fonts and coverage -----------------------------------------------------------------


def test_fonts_are_the_projects_own() -> None:
    for file, _ in avatars.FONT_FILES:
        path = avatars.FONT_DIR / file
        assert path.is_file()
        assert "crm/fonts" in path.as_posix()
    assert (avatars.FONT_DIR / "LICENSE-OFL-1.1.txt").is_file()
    assert (avatars.FONT_DIR / "LICENSE-Apache-2.0.txt").is_file()


@pytest.mark.parametrize(
    ("cluster", "family"),
    [
        ("A", "Noto Sans"),
        ("Ş", "Noto Sans"),
        ("Ω", "Noto Sans"),
        ("Щ", "Noto Sans"),
        ("N\u0308", "Noto Sans"),
        ("ع", "Noto Sans Arabic"),
        ("ש", "Noto Sans Hebrew"),
        ("王", "Droid Sans Fallback"),
        ("김", "Droid Sans Fallback"),
        ("や", "Droid Sans Fallback"),
        ("ヤ", "Droid Sans Fallback"),
    ],
)
def test_font_fallback_order(cluster: str, family: str) -> None:
    index = avatars.font_for(cluster)
    assert index is not None
    assert avatars.FONT_FILES[index][1] == family


def test_every_han_ideograph_and_hangul_syllable_is_covered() -> None:
    cjk = avatars.FONT_FILES.index(("DroidSansFallback.ttf", "Droid Sans Fallback"))
    cmap = avatars._cmap(cjk)
    # The whole Unified Ideographs block as of Unicode 1.1-3.0, where every family name in
    # use is; the few later additions at U+9FA6-9FFF and Extension A are a documented gap.
    assert all(cp in cmap for cp in range(0x4E00, 0x9FA5 + 1))
    assert all(cp in cmap for cp in range(0xAC00, 0xD7A3 + 1))


def test_uncovered_initial_is_dropped_not_drawn_as_a_box() -> None:
    assert avatars.font_for("अ") is None  # Devanagari: no bundled font has it
    assert avatars.avatar_for(1, "अमित", "Shah").initials == ("S",)


def test_empty_or_undrawable_names_give_the_silhouette() -> None:
    for first, last in [("", ""), ("  ", ""), ("अमित", "शाह"), ("🙂", "42")]:
        avatar = avatars.avatar_for(9, first, last)
        assert avatar.initials == ()
        assert avatar.background == avatars.SILHOUETTE_BACKGROUND


# --- SVG ----------------------------------------------------------------------------------


def _svg(avatar: Avatar, size: int = 128, shape: str = "circle") -> ET.Element:
    return ET.fromstring(avatars.render_svg(avatar, size, shape))


def test_svg_parses_and_shows_the_initials() -> None:
    root = _svg(avatars.avatar_for(3, "Anna", "Berg"), 64)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("width") == root.get("height") == "64"
    text = root.find(f"{SVG_NS}text")
    assert text is not None
    assert text.text == "AB"
    assert text.get("fill") == avatars.colours(3)[1]
    assert root.find(f"{SVG_NS}circle") is not None
    family = text.get("font-family", "")
    assert "'Noto Sans'" in family
    assert "'Droid Sans Fallback'" in family
    assert family.endswith("sans-serif")


def test_svg_square_shape() -> None:
    root = _svg(avatars.avatar_for(3, "Anna", "Berg"), shape="square")
    assert root.find(f"{SVG_NS}rect") is not None
    assert root.find(f"{SVG_NS}circle") is None


def test_svg_escapes_every_value() -> None:
    hostile = Avatar(('<script>"&', "'"), '"/><script>alert(1)</script>', "#FFF")
    source = avatars.render_svg(hostile)
    root = ET.fromstring(source)
    assert "<script" not in source
    assert all(not el.tag.endswith("script") for el in root.iter())
    text = root.find(f"{SVG_NS}text")
    assert text is not None
    assert text.text == "<script>\"&'"
    assert root.get("aria-label") == "<script>\"&'"


def test_svg_drops_characters_xml_forbids() -> None:
    ET.fromstring(avatars.render_svg(Avatar(("A\x00\x1b\ufffe",), "#000000", "#FFFFFF")))


def test_svg_right_to_left_and_arabic_letters_kept_apart() -> None:
    text = _svg(avatars.avatar_for(1, "محمد", "علي")).find(f"{SVG_NS}text")
    assert text is not None
    assert text.get("direction") == "rtl"
    assert text.text == "م\u200cع"  # ZWNJ: the two letters must not join into a word
    hebrew = _svg(avatars.avatar_for(1, "דוד", "כהן")).find(f"{SVG_NS}text")
    assert hebrew is not None
    assert hebrew.get("direction") == "rtl"
    assert hebrew.text == "דכ"


def test_svg_silhouette() -> None:
    root = _svg(avatars.avatar_for(1, "", ""))
    assert root.find(f"{SVG_NS}text") is None
    assert root.find(f".//{SVG_NS}clipPath") is not None


# --- PNG ----------------------------------------------------------------------------------


def _png(avatar: Avatar, size: int = 128, shape: str = "circle") -> Image.Image:
    data = avatars.render_png(avatar, size, shape)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = image.convert("RGBA").getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


@pytest.mark.parametrize("size", [16, 17, 64, 128, 255, 512])
@pytest.mark.parametrize("shape", avatars.SHAPES)
def test_png_dimensions_match_size(size: int, shape: str) -> None:
    assert _png(avatars.avatar_for(size, "Anna", "Berg"), size, shape).size == (size, size)


def test_png_circle_has_transparent_corners_and_square_does_not() -> None:
    avatar = avatars.avatar_for(0, "Anna", "Berg")
    circle = _png(avatar, 128, "circle")
    square = _png(avatar, 128, "square")
    assert _pixel(circle, (0, 0))[3] == 0
    assert _pixel(circle, (64, 4))[3] == 255
    assert _pixel(square, (0, 0)) == (*avatars._hex_rgb(avatar.background), 255)


def test_png_draws_the_text_in_the_text_colour() -> None:
    avatar = avatars.avatar_for(0, "Anna", "Berg")  # red with white text
    image = _png(avatar).convert("RGBA")
    colours = {colour for _, colour in image.getcolors(1 << 16) or []}
    assert (*avatars._hex_rgb(avatar.background), 255) in colours
    assert (*avatars._hex_rgb(avatar.foreground), 255) in colours


@pytest.mark.parametrize(
    ("first", "last"),
    [("Anna", "Berg"), ("小明", "王"), ("민준", "김"), ("محمد", "علي"), ("דוד", "כהן"), ("", "")],
)
def test_png_ink_is_centred(first: str, last: str) -> None:
    avatar = avatars.avatar_for(0, first, last)
    coverage = (
        avatars._text_coverage(avatar.initials, 128)
        if avatar.initials
        else avatars._silhouette_indexes(128)
    )
    box = coverage.getbbox()
    assert box is not None
    if avatar.initials:
        assert abs((box[0] + box[2]) / 2 - 64) <= 1
        assert abs((box[1] + box[3]) / 2 - 64) <= 1
        assert box[2] - box[0] <= 0.7 * 128  # inside the circle


def test_png_arabic_initials_are_isolated_letters_right_to_left() -> None:
    px = round(128 * avatars.text_ratio(("م", "ع")))
    coverage = avatars._text_coverage(("م", "ع"), 128)
    box = coverage.getbbox()
    assert box is not None
    # The first initial (meem) stands on the right, the second (ain) on the left, each in
    # its isolated form: exactly the glyph drawn for the letter on its own.
    for letter, x in (("ع", box[0]), ("م", None)):
        font = avatars._cluster_font(letter, px)
        assert font is not None
        alone, _ = avatars._glyph_mask(letter, font, px)
        left = x if x is not None else box[2] - alone.width
        part = coverage.crop((left, 0, left + alone.width, 128))
        part_box = part.getbbox()
        assert part_box is not None
        assert ImageChops.difference(part.crop(part_box), alone).getbbox() is None


@pytest.mark.skipif(not features.check("raqm"), reason="Pillow built without raqm")
def test_clusters_with_marks_are_shaped_with_raqm() -> None:
    shaped = avatars._cluster_font("N\u0308", 40)
    plain = avatars._cluster_font("N", 40)
    assert shaped is not None
    assert plain is not None
    assert shaped.layout_engine == ImageFont.Layout.RAQM
    assert plain.layout_engine == ImageFont.Layout.BASIC


def test_png_silhouette_renders_in_both_shapes_again_and_again() -> None:
    silhouette = avatars.avatar_for(0, "", "")
    for shape in ("square", "circle", "square", "circle"):
        avatars.render_png.cache_clear()  # the shared figure must survive every rendering
        image = _png(silhouette, 64, shape)
        assert _pixel(image, (32, 20))[:3] == avatars._hex_rgb(avatars.SILHOUETTE_FOREGROUND)
        assert _pixel(image, (32, 8))[:3] == avatars._hex_rgb(avatars.SILHOUETTE_BACKGROUND)


def test_png_render_is_cached() -> None:
    avatar = avatars.avatar_for(11, "Cache", "Test")
    first = avatars.render_png(avatar, 96, "square")
    hits = avatars.render_png.cache_info().hits
    assert avatars.render_png(avatar, 96, "square") is first
    assert avatars.render_png.cache_info().hits == hits + 1


# --- versions and ETags -----------------------------------------------------------------


def test_avatar_url_is_versioned_by_what_is_drawn() -> None:
    url = avatars.avatar_url(7, "Anna", "Berg")
    assert re.fullmatch(r"/crm/appusers/7/avatar\.svg\?v=[0-9a-f]{10}", url)
    assert avatars.avatar_url(7, "Alex", "Brown") == url  # same initials, same colour
    assert avatars.avatar_url(7, "Anna", "Meier") != url
    assert avatars.avatar_url(8, "Anna", "Berg") != url.replace("/7/", "/8/")  # other colour


def test_etag_is_strong_and_covers_every_input() -> None:
    avatar = avatars.avatar_for(7, "Anna", "Berg")
    tag = avatars.etag(avatar, "png", 128, "circle")
    assert re.fullmatch(r'"[0-9a-f]{16}"', tag)
    assert avatars.etag(avatar, "png", 128, "circle") == tag
    others = {
        avatars.etag(avatar, "svg", 128, "circle"),
        avatars.etag(avatar, "png", 64, "circle"),
        avatars.etag(avatar, "png", 128, "square"),
        avatars.etag(avatars.avatar_for(8, "Anna", "Berg"), "png", 128, "circle"),
        avatars.etag(avatars.avatar_for(7, "Anna", "Meier"), "png", 128, "circle"),
    }
    assert tag not in others
    assert len(others) == 5


# --- benchmark ------------------------------------------------------------------------------


def test_benchmark_reports_every_figure() -> None:
    result = run_avatar_benchmark(svg_count=50, png_count=10, repeats=1)
    for key in (
        "avatar_svg_us",
        "avatar_url_us",
        "avatar_png128_cold_ms",
        "avatar_png128_cached_ms",
    ):
        assert result[key] > 0


def test_warm_up_loads_every_bundled_font() -> None:
    avatars.font_for.cache_clear()
    avatars._cmap.cache_clear()
    avatars.warm_up()
    assert avatars._cmap.cache_info().currsize == len(avatars.FONT_FILES)
