"""A labelled set of pictures with words in them (and photos without), for issue 16's figures.

Deterministic by seed: the same seed, the same Pillow and the same fonts write the same
bytes. Each picture with words shows one realistic item (a router sticker, a receipt, an
invoice, a slide, an error message in a terminal, a sign, a sticky note, a business card,
a boarding pass, a letter) under one condition:

- ``clean``: flat or gradient background, straight, PNG;
- ``rotated``: turned 1–6°, JPEG quality 70–90;
- ``photographed``: the item lying on a textured table, perspective-warped, unevenly lit,
  blurred, noisy, JPEG quality 60–85, phone-photo sized;
- ``screenshot``: a window rendered from a real text page (the pyfaq entries beside the
  repository: ``../shared/eval/pyfaq/docs``) or a terminal with an error, PNG;
- ``scanned_pdf``: a letter or invoice on an A4 page at 150 dpi, slightly skewed and
  grainy, saved as a PDF with no text layer;
- ``no_text``: photos without any words (landscapes, clouds, bokeh, textures, shapes),
  the distractors the text-presence gate should skip.

Writes, under ``out``::

    docs/<condition>/<name>.png|jpg|pdf   the pictures (the folder to index)
    truth.jsonl    {"path", "condition", "family", "text", "lines", "font", "font_px", ...}
    queries.jsonl  {"query", "relevant": [path relative to docs/], "condition", "family", "style"}

Queries are phrased the way a person would look for the item ("network key of HomeNet-4F2A",
"what did I spend at the Corner Bakery in Leeds") rather than copying the picture's words;
the identifier that tells one item from its look-alikes (a network name, an invoice number)
stays, since nobody could find it otherwise. Screenshot queries are the pyfaq questions,
written by other people for the page's text.

    .venv/bin/python bench/ocr_set.py /tmp/ocr-set --n 60 --photos 20 --seed 16
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import random
import shutil
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
PYFAQ = HERE.parent.parent / "shared" / "eval" / "pyfaq"

CONDITIONS = ("clean", "rotated", "photographed", "screenshot", "scanned_pdf")
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "C:/Windows/Fonts")
# Readable families found on common Linux desktops; the first that exist are used.
FONT_FILES = {
    "sans": ("DejaVuSans.ttf", "NimbusSans-Regular.otf", "LiberationSans-Regular.ttf", "Arial.ttf"),
    "sans-bold": ("DejaVuSans-Bold.ttf", "NimbusSans-Bold.otf", "LiberationSans-Bold.ttf", "Arial Bold.ttf"),
    "serif": ("DejaVuSerif.ttf", "NimbusRoman-Regular.otf", "P052-Roman.otf", "LiberationSerif-Regular.ttf"),
    "mono": ("DejaVuSansMono.ttf", "NimbusMonoPS-Regular.otf", "NotoSansMono-Regular.ttf", "LiberationMono-Regular.ttf"),
    "condensed": ("DejaVuSansCondensed.ttf", "NimbusSansNarrow-Regular.otf"),
    "gothic": ("URWGothic-Book.otf",),
    "bookman": ("URWBookman-Light.otf", "C059-Roman.otf"),
}


# ------------------------------------------------------------------ fonts
_FONT_INDEX: dict[str, Path] | None = None


def _font_index() -> dict[str, Path]:
    global _FONT_INDEX
    if _FONT_INDEX is None:
        found: dict[str, Path] = {}
        for d in FONT_DIRS:
            root = Path(d)
            if root.is_dir():
                for p in sorted(root.rglob("*")):
                    if p.suffix.lower() in (".ttf", ".otf"):
                        found.setdefault(p.name, p)
        _FONT_INDEX = found
    return _FONT_INDEX


def font_families() -> dict[str, Path]:
    """Family → font file, for the families this machine has."""
    index = _font_index()
    out: dict[str, Path] = {}
    for family, names in FONT_FILES.items():
        for name in names:
            if name in index:
                out[family] = index[name]
                break
    return out


def load_font(family: str, px: int) -> tuple[Any, str]:
    """(font, its name): the family's file, or Pillow's bundled font where the machine has none."""
    fams = font_families()
    path = fams.get(family) or fams.get("sans")
    if path is not None:
        return ImageFont.truetype(str(path), px), path.stem
    return ImageFont.load_default(px), "pillow-default"


# ------------------------------------------------------------------ items
@dataclasses.dataclass
class Item:
    family: str
    rows: list[tuple[str, str]]  # (left, right): a receipt's price sits right; most rows have no right part
    queries: list[tuple[str, str]]  # (query, style): "paraphrase" or "exact"
    layout: str = "card"  # card, center, receipt, terminal, window, page
    title: str = ""  # a window's title bar

    @property
    def lines(self) -> list[str]:
        return [f"{a} {b}".strip() for a, b in self.rows if f"{a} {b}".strip()]


FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars",
         "Maya", "Nils", "Olga", "Paul", "Rosa", "Sami", "Tara", "Umut", "Vera", "Wim", "Yusuf", "Zoe"]
LAST = ["Schneider", "Okafor", "Lindqvist", "Moreau", "Kowalski", "Tanaka", "Fischer", "Alvarez", "Novak",
        "Brennan", "Haddad", "Jensen", "Rossi", "Nakamura", "Weber", "Dubois", "Petrov", "Costa"]
CITIES = ["Leeds", "Bremen", "Lyon", "Porto", "Graz", "Utrecht", "Malmo", "Gdansk", "Bologna", "Ghent",
          "Aarhus", "Brno", "Cork", "Basel", "Turin", "Seville", "Krakow", "Tampere", "Nantes", "Leipzig"]


def _code(rng: random.Random, n: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def router(rng: random.Random) -> Item:
    brand = rng.choice(["FRITZ!Box 7590", "Speedport Smart 4", "TP-Link Archer C6", "Netgear Nighthawk R7000",
                        "Vodafone Station", "Linksys EA7500", "ASUS RT-AX58U", "Huawei B535"])
    ssid = f"{rng.choice(['HomeNet', 'WLAN', 'Telekom', 'NETGEAR', 'Livebox', 'SKY', 'BTHub'])}-{_code(rng, 4, '0123456789ABCDEF')}"
    key = "-".join(_code(rng, 4, "0123456789") for _ in range(4)) if rng.random() < 0.5 else _code(rng, 12)
    rows = [(brand, ""), (f"WiFi network (SSID): {ssid}", ""), (f"WiFi password: {key}", ""),
            (f"Serial no.: {_code(rng, 3)}{rng.randrange(10**7, 10**8)}", ""),
            (f"Web interface: http://192.168.{rng.choice([0, 1, 178, 2])}.1", "")]
    qs = [(f"network key of {ssid}", "paraphrase"), (f"wifi password {ssid}", "exact")]
    return Item("router", rows, qs)


STORES = {
    "Green Basket Market": ["Oat milk 1L", "Bananas 1kg", "Sourdough loaf", "Free range eggs x6", "Cheddar 200g", "Coffee beans"],
    "Corner Bakery": ["Croissant", "Rye bread", "Cinnamon roll", "Flat white", "Apple strudel", "Baguette"],
    "City Pharmacy": ["Ibuprofen 400mg", "Plasters", "Sun cream SPF30", "Throat lozenges", "Vitamin D"],
    "Hardware Depot": ["Wood screws 4x40", "Wall plugs x50", "Masking tape", "LED bulb E27", "Sandpaper P120"],
    "Blue Door Cafe": ["Cappuccino", "Club sandwich", "Lemonade", "Cheesecake", "Soup of the day"],
    "Book Nook": ["Paperback novel", "Notebook A5", "Greeting card", "Road atlas", "Bookmark"],
}


def receipt(rng: random.Random) -> Item:
    store = rng.choice(sorted(STORES))
    city = rng.choice(CITIES)
    items = rng.sample(STORES[store], k=min(len(STORES[store]), rng.randint(3, 5)))
    prices = [rng.randrange(79, 1899) / 100 for _ in items]
    total = sum(prices)
    rows = [(store.upper(), ""), (f"{rng.randint(2, 180)} High Street, {city}", ""),
            (f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025 {rng.randint(8, 19):02d}:{rng.randint(0, 59):02d}", "")]
    rows += [(name, f"{p:.2f}") for name, p in zip(items, prices)]
    rows += [("TOTAL", f"{total:.2f}"), (f"VISA **** {rng.randint(1000, 9999)}", ""), ("Thank you for your visit!", "")]
    qs = [(f"what did I spend at the {store} in {city}", "paraphrase"), (f"{store} {city} receipt total {total:.2f}", "exact")]
    return Item("receipt", rows, qs, layout="receipt")


def invoice(rng: random.Random) -> Item:
    number = rng.randint(1000, 99999)
    company = rng.choice(["Muller Plumbing Ltd", "Brightside Electrics", "Nordlicht Design GmbH", "Oakridge Roofing",
                          "Pixelworks Studio", "Harbour Legal LLP", "Greenleaf Gardening", "Stonebridge IT Services"])
    work = rng.sample(["Consulting, 6 hours", "Replacement of boiler valve", "Website maintenance (May)",
                       "Call-out charge", "Materials", "Annual service contract", "Logo redesign", "Travel costs"], k=3)
    amounts = [rng.randrange(4000, 90000) / 100 for _ in work]
    rows = [(company, ""), ("INVOICE", ""), (f"Invoice no. {number}", ""),
            (f"Date: {rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2025", "")]
    rows += [(w, f"EUR {a:,.2f}") for w, a in zip(work, amounts)]
    rows += [("Amount due", f"EUR {sum(amounts):,.2f}"), (f"Please pay within 14 days to IBAN DE{rng.randint(10, 99)} 5001 0517 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}", "")]
    qs = [(f"bill number {number} from {company.split()[0]}", "paraphrase"), (f"invoice {number}", "exact")]
    return Item("invoice", rows, qs, layout="receipt")


SLIDES = [
    ("Migrating Billing to Kubernetes", ["Weekly outages of the old VM cluster", "Three phases until March", "Owner: platform team"],
     "talk about moving the billing service onto kubernetes"),
    ("Customer Churn Analysis", ["Churn rose 4% after the price change", "Most cancellations in month two", "Next: exit survey"],
     "presentation on why customers cancel"),
    ("Onboarding New Engineers", ["Laptop and accounts on day one", "A buddy for the first month", "First pull request in week one"],
     "slides for welcoming new developers"),
    ("Reducing Cloud Costs", ["Idle test machines cost 30% of the bill", "Switch off at night", "Reserved instances for databases"],
     "how to cut the AWS bill presentation"),
    ("Warehouse Safety Training", ["Wear high-visibility vests", "Forklift lanes are marked yellow", "Report every near miss"],
     "forklift safety slides"),
    ("Marketing Plan Spring Campaign", ["Target: young families", "Budget split: social 60%, print 40%", "Launch on 1 April"],
     "advertising plan for the spring"),
    ("Incident Review: Payment Outage", ["Database failover took 42 minutes", "Alerts went to an old pager", "Action: test failover monthly"],
     "postmortem of the day payments were down"),
    ("Roadmap for the Mobile App", ["Offline mode in Q2", "Dark theme", "Faster start on old phones"],
     "plans for the phone app next year"),
    ("Introduction to Photosynthesis", ["Light energy becomes chemical energy", "Chlorophyll absorbs red and blue", "Oxygen is released"],
     "biology lesson how plants make food from sunlight"),
    ("Budget Proposal for the Library", ["New study rooms", "Longer opening hours", "E-book licences"],
     "funding request for the public library"),
]


def slide(rng: random.Random) -> Item:
    title, bullets, query = rng.choice(SLIDES)
    when = f"{rng.choice(['Q1', 'Q2', 'Q3', 'Q4'])} {rng.randint(2019, 2026)}"
    rows = [(f"{title} ({when})", "")] + [(f"- {b}", "") for b in bullets]
    return Item("slide", rows, [(f"{query} {when}", "paraphrase"), (f"{title} {when}", "exact")], layout="center")


ERRORS: list[tuple[str, Callable[[random.Random], tuple[list[str], str, str]]]] = []


def _module_error(rng: random.Random) -> tuple[list[str], str, str]:
    module = rng.choice(["numpy", "pandas", "requests", "torch", "yaml", "cv2", "sklearn", "matplotlib", "scipy",
                         "flask", "django", "bs4", "PIL", "lxml", "psycopg2", "boto3"])
    script = rng.choice(["app", "train", "report", "scrape", "main", "analysis"])
    lines = [f"$ python {script}.py", "Traceback (most recent call last):",
             f'  File "{script}.py", line {rng.randint(1, 40)}, in <module>', f"    import {module}",
             f"ModuleNotFoundError: No module named '{module}'"]
    return lines, f"{module} is not installed error", f"ModuleNotFoundError {module}"


def _permission_error(rng: random.Random) -> tuple[list[str], str, str]:
    path = f"/var/log/{rng.choice(['nginx', 'postgresql', 'cups', 'apt', 'syslog-ng'])}/{rng.choice(['access', 'error', 'main'])}.log"
    lines = ["$ python rotate_logs.py", "Traceback (most recent call last):", '  File "rotate_logs.py", line 9, in <module>',
             f"    with open('{path}', 'a') as fh:", f"PermissionError: [Errno 13] Permission denied: '{path}'"]
    return lines, f"not allowed to write {path}", f"Permission denied {path}"


def _connection_error(rng: random.Random) -> tuple[list[str], str, str]:
    port = rng.choice([5432, 6379, 8080, 27017, 3306, 9200, 5672])
    lines = [f"$ curl http://localhost:{port}/health", f"curl: (7) Failed to connect to localhost port {port}: Connection refused"]
    return lines, f"could not reach the service on port {port}", f"Connection refused port {port}"


def _git_error(rng: random.Random) -> tuple[list[str], str, str]:
    branch = rng.choice(["main", "develop", "release-2.3", "feature/login", "hotfix-payments"])
    lines = [f"$ git push origin {branch}", "To github.com:acme/shop.git",
             f" ! [rejected]        {branch} -> {branch} (non-fast-forward)",
             "error: failed to push some refs to 'github.com:acme/shop.git'"]
    return lines, f"git refused my push to {branch}", f"failed to push some refs {branch}"


def _npm_error(rng: random.Random) -> tuple[list[str], str, str]:
    pkg = rng.choice(["react", "webpack", "eslint", "typescript", "vite", "jest"])
    lines = [f"$ npm install {pkg}", "npm ERR! code ERESOLVE", "npm ERR! ERESOLVE unable to resolve dependency tree",
             f"npm ERR! Could not resolve dependency: peer {pkg}@\"^{rng.randint(2, 18)}.0.0\""]
    return lines, f"npm dependency conflict installing {pkg}", f"npm ERESOLVE {pkg}"


ERRORS += [("module", _module_error), ("permission", _permission_error), ("connection", _connection_error),
           ("git", _git_error), ("npm", _npm_error)]


def error(rng: random.Random) -> Item:
    _, make = rng.choice(ERRORS)
    lines, para, exact = make(rng)
    return Item("error", [(x, "") for x in lines], [(para, "paraphrase"), (exact, "exact")], layout="terminal",
                title="Terminal")


def sign(rng: random.Random) -> Item:
    kind = rng.randrange(4)
    if kind == 0:
        n, city = rng.randint(1, 19), rng.choice(CITIES)
        rows = [(f"Platform {n}", ""), (f"Trains to {city}", ""), ("Please mind the gap", "")]
        qs = [(f"which track does the train to {city} leave from", "paraphrase"), (f"platform {n} {city}", "exact")]
    elif kind == 1:
        shop = rng.choice(["Sunrise Dental Practice", "Hill Street Library", "Lotus Yoga Studio", "Town Hall Service Desk",
                           "Riverside Pool", "Bike Repair Kiosk"])
        a, b = rng.randint(7, 10), rng.randint(16, 20)
        day = rng.choice(["Saturday", "Sunday", "Wednesday"])
        rows = [(shop, ""), ("Opening hours", ""), (f"Mon-Fri {a}:00 - {b}:00", ""), (f"Closed on {day}", "")]
        qs = [(f"when is the {shop.lower()} open", "paraphrase"), (f"{shop} opening hours", "exact")]
    elif kind == 2:
        a, b = rng.randint(6, 9), rng.randint(10, 12)
        street = rng.choice(["Mill Lane", "Station Road", "Kings Avenue", "Church Street", "Bridge Street"])
        rows = [("NO PARKING", ""), (f"{street} loading zone", ""), (f"Mon-Sat {a} am - {b} am", ""), ("Tow-away zone", "")]
        qs = [(f"where am I not allowed to park on {street}", "paraphrase"), (f"no parking {street} loading zone", "exact")]
    else:
        room, dept = rng.randint(100, 499), rng.choice(["Human Resources", "Accounts Payable", "IT Helpdesk",
                                                         "Student Services", "Lost Property", "Radiology"])
        rows = [(f"Room {room}", ""), (dept, ""), ("Please knock and wait", "")]
        qs = [(f"which room is {dept.lower()} in", "paraphrase"), (f"room {room} {dept}", "exact")]
    return Item("sign", rows, qs, layout="center")


def note(rng: random.Random) -> Item:
    who = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    topic = rng.choice(["the garage door", "the tax return", "the school trip", "the broken heater", "the new contract",
                        "the birthday party", "the dentist bill", "the car insurance"])
    day = rng.choice(["Monday", "Tuesday", "Thursday", "Friday"])
    rows = [("TO DO", ""), (f"Call {who} about {topic}", ""), (f"before {day}!", ""), (f"Buy milk, {rng.choice(['bread', 'eggs', 'tea'])}", "")]
    return Item("note", rows, [(f"reminder to phone {who} regarding {topic.removeprefix('the ')}", "paraphrase"),
                               (f"call {who} about {topic}", "exact")])


def card(rng: random.Random) -> Item:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    role = rng.choice(["Senior Architect", "Head of Sales", "Physiotherapist", "Tax Advisor", "Product Designer", "Notary"])
    company = rng.choice(["Vantage Partners", "Bluehill Clinic", "Kestrel Architects", "Meridian Tax", "Foxglove Studio"])
    phone = f"+{rng.choice([44, 49, 33, 31])} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}"
    rows = [(f"{first} {last}", ""), (role, ""), (company, ""), (f"Tel. {phone}", ""),
            (f"{first.lower()}.{last.lower()}@{company.split()[0].lower()}.com", "")]
    return Item("card", rows, [(f"contact details of {first} {last} the {role.lower()}", "paraphrase"),
                               (f"{first} {last} {company}", "exact")])


def boarding(rng: random.Random) -> Item:
    code = f"{rng.choice(['LH', 'BA', 'AF', 'KL', 'SK', 'IB', 'OS'])}{rng.randint(100, 9999)}"
    a, b = rng.sample(CITIES, 2)
    rows = [("BOARDING PASS", ""), (f"{rng.choice(LAST).upper()}/{rng.choice(FIRST).upper()}", ""), (f"Flight {code}", ""),
            (f"From {a} to {b}", ""), (f"Gate {rng.choice('ABCD')}{rng.randint(1, 40)}  Seat {rng.randint(1, 38)}{rng.choice('ACDF')}", ""),
            (f"Boarding {rng.randint(5, 22):02d}:{rng.choice(['05', '20', '35', '50'])}", "")]
    return Item("boarding", rows, [(f"ticket for my flight from {a} to {b}", "paraphrase"), (f"boarding pass {code}", "exact")])


def letter(rng: random.Random) -> Item:
    number = rng.randint(100000, 999999)
    sender, subject, body, query = rng.choice([
        ("City Energy Services", "Your electricity contract", "we are writing to inform you that the price per kilowatt hour "
         "will change from the first of next month. Your monthly instalment will be adjusted accordingly.",
         "letter about the power price going up"),
        ("Riverside Housing Association", "Annual service charge statement", "please find below the statement of service "
         "charges for your flat. The balance will be credited to your rent account.", "statement of the flat's service charges"),
        ("Northern Health Insurance", "Confirmation of your claim", "we have received the invoices you submitted and will "
         "reimburse the amount within ten working days.", "insurer confirming they will pay back my medical bills"),
        ("Regional Tax Office", "Notice of assessment", "your income tax assessment for the last year has been completed. "
         "You are entitled to a refund which will be paid to your account.", "tax refund notice"),
    ])
    who = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    rows = [(sender, ""), (f"{rng.randint(1, 99)} Market Square, {rng.choice(CITIES)}", ""), ("", ""),
            (who, ""), (f"Customer number {number}", ""), ("", ""), (subject, ""), ("", ""), (f"Dear {who},", "")]
    rows += [(w, "") for w in textwrap.wrap(body, 64)]
    rows += [("", ""), ("Yours sincerely,", ""), (f"{sender} customer team", "")]
    return Item("letter", rows, [(f"{query} {number}", "paraphrase"), (f"{subject} customer number {number}", "exact")],
                layout="page")


FAMILIES: dict[str, Callable[[random.Random], Item]] = {
    "router": router, "receipt": receipt, "invoice": invoice, "slide": slide, "error": error, "sign": sign,
    "note": note, "card": card, "boarding": boarding,
}


def pyfaq_pages(max_lines: int = 24, width: int = 92) -> list[tuple[str, str, list[str]]]:
    """(question, entry path, wrapped lines) of pyfaq entries short enough to fit one window."""
    queries = PYFAQ / "queries.jsonl"
    if not queries.is_file():
        return []
    out = []
    for raw in queries.read_text(encoding="utf-8").splitlines():
        obj = json.loads(raw)
        rel = obj["relevant"][0]
        src = PYFAQ / "docs" / rel
        if not src.is_file():
            continue
        lines: list[str] = []
        for para in src.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            para = " ".join(para.split())
            if para:
                lines += textwrap.wrap(para, width) + [""]
        lines = lines[:-1]
        if 3 <= len(lines) <= max_lines:
            out.append((obj["query"], rel, lines))
    return out


# ------------------------------------------------------------------ rendering
def _contrast_pair(rng: random.Random) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(background, ink) with enough contrast to be read by a person."""
    pairs = [((250, 250, 245), (20, 20, 20)), ((255, 255, 255), (40, 40, 90)), ((30, 30, 34), (235, 235, 235)),
             ((255, 236, 140), (30, 30, 30)), ((200, 30, 40), (255, 255, 255)), ((20, 70, 150), (255, 255, 255)),
             ((225, 240, 225), (20, 80, 30)), ((240, 240, 240), (170, 20, 20)), ((15, 90, 60), (250, 250, 250))]
    return rng.choice(pairs)


def render_item(item: Item, rng: random.Random, families: Sequence[str]) -> tuple[Image.Image, dict[str, Any]]:
    """The item on its own card (no scene around it): the image, and how it was drawn."""
    if item.layout == "terminal":
        family, px = "mono", rng.randint(15, 22)
        bg, ink = (rng.choice([(12, 12, 12), (30, 10, 36), (0, 43, 54)]), (rng.choice([(230, 230, 230), (170, 230, 170)])))
    elif item.layout == "receipt":
        family, px = rng.choice(["mono", "mono", "condensed", "sans"]), rng.randint(16, 24)
        bg, ink = (250, 248, 240), (25, 25, 25)
    elif item.layout == "page":
        family, px = rng.choice(["serif", "sans", "bookman"]), rng.randint(20, 24)
        bg, ink = (252, 252, 250), (15, 15, 15)
    else:
        family, px = rng.choice(list(families)), rng.randint(18, 46) if item.layout != "center" else rng.randint(28, 56)
        bg, ink = _contrast_pair(rng)
    font, font_name = load_font(family, px)
    big, _ = load_font("sans-bold", int(px * 1.3)) if item.layout in ("center", "receipt") else (font, "")
    lead = int(px * rng.uniform(1.3, 1.6))
    pad = int(px * rng.uniform(0.8, 1.6))
    draw_probe = ImageDraw.Draw(Image.new("RGB", (8, 8)))

    def width_of(text: str, f: Any) -> float:
        return float(draw_probe.textlength(text, font=f)) if text else 0.0

    fonts = [big if (i == 0 and item.layout in ("center", "receipt")) else font for i in range(len(item.rows))]
    if item.layout == "page":
        w, h = 1240, 1754  # A4 at 150 dpi
    else:
        gap = px * 2
        w = int(max(width_of(a, f) + (width_of(b, f) + gap if b else 0) for (a, b), f in zip(item.rows, fonts)) + 2 * pad)
        h = int(len(item.rows) * lead + 2 * pad + (px * 0.3 if fonts[0] is big else 0))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    y = float(pad if item.layout != "page" else 160)
    left = pad if item.layout != "page" else 150
    for (a, b), f in zip(item.rows, fonts):
        if item.layout == "center":
            d.text(((w - width_of(a, f)) / 2, y), a, fill=ink, font=f)
        else:
            d.text((left, y), a, fill=ink, font=f)
            if b:
                d.text((w - left - width_of(b, f), y), b, fill=ink, font=f)
        y += lead * (1.3 if f is big and f is not font else 1.0)
    return img, {"font": font_name, "font_px": px, "background": list(bg), "ink": list(ink)}


def render_window(title: str, lines: list[str], rng: random.Random, terminal: bool = False) -> tuple[Image.Image, dict[str, Any]]:
    """A desktop window: a title bar with its title, and the text below (an editor, a browser, a terminal)."""
    px = rng.randint(14, 17)
    family = "mono" if terminal else rng.choice(["sans", "serif", "mono"])
    font, font_name = load_font(family, px)
    title_font, _ = load_font("sans-bold", 14)
    lead = int(px * 1.45)
    w = rng.choice([1024, 1152, 1280])
    h = max(480, min(860, 70 + lead * (len(lines) + 2)))
    bg, ink = ((24, 24, 28), (220, 220, 220)) if terminal else ((255, 255, 255), (30, 30, 30))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, w, 34), fill=(220, 220, 224) if not terminal else (58, 58, 64))
    for i, c in enumerate([(237, 106, 94), (245, 191, 79), (98, 197, 84)]):
        d.ellipse((12 + i * 22, 11, 24 + i * 22, 23), fill=c)
    d.text(((w - d.textlength(title, font=title_font)) / 2, 9), title, fill=(60, 60, 60) if not terminal else (200, 200, 200),
           font=title_font)
    if not terminal:  # a sidebar with no words, as an editor or a help browser has
        d.rectangle((0, 35, 180, h), fill=(242, 243, 246))
    x, y = (200 if not terminal else 16), 52
    for line in lines:
        if line:
            d.text((x, y), line, fill=ink, font=font)
        y += lead
    return img, {"font": font_name, "font_px": px, "window": [w, h]}


def _perspective_coeffs(dst: Sequence[tuple[float, float]], src: Sequence[tuple[float, float]]) -> list[float]:
    """The 8 coefficients PIL's PERSPECTIVE transform wants: output point → input point."""
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=np.float64)
    b = np.array([c for p in src for c in p], dtype=np.float64)
    return [float(c) for c in np.linalg.solve(a, b)]


def _fractal_noise(nrng: np.random.Generator, w: int, h: int, octaves: int = 5) -> np.ndarray:
    """Smooth noise in [0, 1] (upscaled random grids summed): clouds, paper, table tops."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gw, gh = max(2, w >> (7 - o)), max(2, h >> (7 - o))
        grid = Image.fromarray((nrng.random((gh, gw)) * 255).astype(np.uint8))
        out += amp * np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), np.float32) / 255.0
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / max(1e-6, float(out.max() - out.min()))


def _background(rng: random.Random, nrng: np.random.Generator, w: int, h: int) -> Image.Image:
    kind = rng.choice(["flat", "gradient", "paper"])
    base = np.array(rng.choice([(245, 245, 245), (225, 230, 240), (240, 232, 220), (60, 64, 72), (210, 225, 210)]), np.float32)
    if kind == "flat":
        arr = np.broadcast_to(base, (h, w, 3)).copy()
    elif kind == "gradient":
        t = np.linspace(0.85, 1.1, w, dtype=np.float32)[None, :, None]
        arr = np.clip(base * t, 0, 255) * np.ones((h, 1, 1), np.float32)
    else:
        arr = base * (0.92 + 0.08 * _fractal_noise(nrng, w, h)[..., None])
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def on_background(doc: Image.Image, rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    mx, my = rng.randint(20, 120), rng.randint(20, 120)
    bg = _background(rng, nrng, doc.width + 2 * mx, doc.height + 2 * my)
    bg.paste(doc, (mx, my))
    return bg


def rotate(img: Image.Image, rng: random.Random) -> tuple[Image.Image, float]:
    angle = rng.choice([-1, 1]) * rng.uniform(1.0, 6.0)
    corner = img.getpixel((0, 0))
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=corner), angle


def photograph(doc: Image.Image, rng: random.Random, nrng: np.random.Generator) -> tuple[Image.Image, dict[str, Any]]:
    """The item lying on a table, shot at an angle with a phone: warp, light, blur, grain."""
    scale = min(1.0, 1300 / max(doc.size))
    if scale < 1.0:
        doc = doc.resize((int(doc.width * scale), int(doc.height * scale)), Image.Resampling.LANCZOS)
    W, H = int(doc.width * rng.uniform(1.25, 1.6)) + 80, int(doc.height * rng.uniform(1.25, 1.7)) + 80
    W, H = max(W, int(H * 0.75)), max(H, int(W * 0.75))  # a camera's frame, not a strip
    wood = np.array(rng.choice([(150, 110, 70), (120, 120, 125), (200, 190, 170), (90, 60, 40)]), np.float32)
    table = wood * (0.75 + 0.35 * _fractal_noise(nrng, W, H)[..., None])
    scene = Image.fromarray(np.clip(table, 0, 255).astype(np.uint8))
    ox, oy = (W - doc.width) // 2, (H - doc.height) // 2
    shadow = Image.new("L", scene.size, 0)
    ImageDraw.Draw(shadow).rectangle((ox + 8, oy + 10, ox + doc.width + 8, oy + doc.height + 10), fill=110)
    scene.paste((0, 0, 0), mask=shadow.filter(ImageFilter.GaussianBlur(9)))
    scene.paste(doc, (ox, oy))
    long_side = rng.choice([1600, 1800, 2000])  # a phone photo, as the person's library holds them
    k = long_side / max(W, H)
    W, H = round(W * k), round(H * k)
    scene = scene.resize((W, H), Image.Resampling.BICUBIC)
    j = rng.uniform(0.03, 0.08)
    corners = [(0, 0), (W, 0), (W, H), (0, H)]
    moved = [(x + rng.uniform(-j, j) * W, y + rng.uniform(-j, j) * H) for x, y in corners]
    shot = scene.transform(scene.size, Image.Transform.PERSPECTIVE, _perspective_coeffs(corners, moved),
                           resample=Image.Resampling.BICUBIC, fillcolor=tuple(int(c) for c in wood))
    # light falling from one side, then focus and sensor noise
    arr = np.asarray(shot, np.float32)
    gx = np.linspace(rng.uniform(0.7, 0.95), rng.uniform(1.0, 1.12), W, dtype=np.float32)
    if rng.random() < 0.5:
        gx = gx[::-1]
    arr = arr * gx[None, :, None]
    blur = rng.uniform(0.4, 1.3)
    shot = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
    sigma = rng.uniform(3.0, 9.0)
    arr = np.asarray(shot, np.float32) + nrng.normal(0, sigma, (H, W, 1)).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), {"blur": round(blur, 2), "noise": round(sigma, 1),
                                                                     "warp": round(j, 3)}


def scan(page: Image.Image, rng: random.Random, nrng: np.random.Generator) -> tuple[Image.Image, dict[str, Any]]:
    angle = rng.uniform(-1.2, 1.2)
    page = page.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(250, 250, 250))
    arr = np.asarray(page.convert("L"), np.float32) + nrng.normal(0, rng.uniform(4, 10), (page.height, page.width))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), {"angle": round(angle, 2)}


# ------------------------------------------------------------------ photos without words
def photo(kind: str, rng: random.Random, nrng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    w, h = size
    if kind == "landscape":
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        top, low = np.array([70, 120, 200], np.float32), np.array([200, 220, 240], np.float32)
        arr = (top * (1 - t) + low * t) * np.ones((1, w, 1), np.float32)
        img = Image.fromarray(arr.astype(np.uint8))
        d = ImageDraw.Draw(img)
        sx, sy, r = rng.randint(0, w), rng.randint(h // 10, h // 3), rng.randint(h // 25, h // 10)
        d.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, 240, 200))
        for layer in range(3):
            base = h * (0.5 + 0.15 * layer)
            ridge = base + (nrng.standard_normal(16).cumsum() * h * 0.02)
            xs = np.linspace(0, w, len(ridge))
            pts = [(float(x), float(y)) for x, y in zip(xs, ridge)] + [(w, h), (0, h)]
            g = 90 + 30 * layer
            d.polygon(pts, fill=(40 + 20 * layer, g + rng.randint(0, 40), 40 + 10 * layer))
        arr = np.asarray(img, np.float32) * (0.9 + 0.2 * _fractal_noise(nrng, w, h)[..., None])
    elif kind == "clouds":
        n = _fractal_noise(nrng, w, h)[..., None]
        arr = np.array([60, 110, 190], np.float32) * (1 - n) + np.array([245, 245, 250], np.float32) * n
    elif kind == "bokeh":
        img = Image.new("RGB", size, (10, 12, 20))
        d = ImageDraw.Draw(img)
        for _ in range(60):
            x, y, r = rng.randint(0, w), rng.randint(0, h), rng.randint(w // 60, w // 12)
            d.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randint(80, 255), rng.randint(60, 200), rng.randint(20, 160)))
        arr = np.asarray(img.filter(ImageFilter.GaussianBlur(w / 90)), np.float32)
    elif kind == "wood":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        grain = np.sin(xx / w * 60 + 6 * _fractal_noise(nrng, w, h)) * 0.5 + 0.5
        arr = np.array([110, 70, 35], np.float32) + grain[..., None] * np.array([70, 50, 30], np.float32)
    elif kind == "foliage":
        n1, n2 = _fractal_noise(nrng, w, h, 7), _fractal_noise(nrng, w, h, 6)
        arr = np.stack([40 + 80 * n2, 80 + 120 * n1, 30 + 50 * n2], axis=-1)
    else:  # shapes
        img = Image.new("RGB", size, tuple(rng.randint(120, 230) for _ in range(3)))
        d = ImageDraw.Draw(img)
        for _ in range(25):
            x, y = rng.randint(0, w), rng.randint(0, h)
            r = rng.randint(w // 30, w // 6)
            colour = tuple(rng.randint(0, 255) for _ in range(3))
            if rng.random() < 0.5:
                d.ellipse((x - r, y - r, x + r, y + int(r * rng.uniform(0.5, 1.5))), fill=colour)
            else:
                d.polygon([(x + rng.randint(-r, r), y + rng.randint(-r, r)) for _ in range(rng.randint(3, 6))], fill=colour)
        arr = np.asarray(img.filter(ImageFilter.GaussianBlur(2)), np.float32)
    arr = np.asarray(arr, np.float32) + nrng.normal(0, 3, (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


PHOTO_KINDS = ("landscape", "clouds", "bokeh", "wood", "foliage", "shapes")


# ------------------------------------------------------------------ the set
def _save(img: Image.Image, path: Path, fmt: str, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, "JPEG", quality=quality)
    elif fmt == "PDF":
        when = time.gmtime(1_740_821_400)  # a fixed date (2025-03-01): the same bytes each run
        img.save(buf, "PDF", resolution=150.0, creationDate=when, modDate=when)
    else:
        img.save(buf, "PNG", optimize=False)
    path.write_bytes(buf.getvalue())


def make_ocr_set(out: Path, n: int = 60, photos: int = 20, seed: int = 16,
                 photo_size: tuple[int, int] = (1600, 1200)) -> dict[str, Any]:
    """Write the set under ``out`` (replacing what is there); returns counts per condition."""
    if out.exists():
        shutil.rmtree(out)
    docs = out / "docs"
    docs.mkdir(parents=True)
    families = [f for f in ("sans", "sans-bold", "serif", "mono", "condensed", "gothic", "bookman") if f in font_families()]
    families = families or ["sans"]
    pages = pyfaq_pages()
    truth: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    seen: set[str] = set()
    fam_names = sorted(FAMILIES)
    page_order = random.Random(seed).sample(range(len(pages)), len(pages)) if pages else []
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        nrng = np.random.default_rng([seed, i])
        condition = CONDITIONS[i % len(CONDITIONS)]
        meta: dict[str, Any] = {}
        if condition == "screenshot" and page_order and rng.random() < 0.6:
            question, rel, lines = pages[page_order[(i // len(CONDITIONS)) % len(page_order)]]
            title = f"{Path(rel).name} - Python FAQ"
            img, meta = render_window(title, lines, rng)
            item = Item("faq_page", [(title, "")] + [(x, "") for x in lines], [(question, "paraphrase")], layout="window")
        else:
            for _attempt in range(50):
                if condition == "screenshot":
                    item = error(rng)
                elif condition == "scanned_pdf":
                    item = letter(rng) if rng.random() < 0.6 else invoice(rng)
                    item.layout = "page"
                else:
                    item = FAMILIES[fam_names[(i // len(CONDITIONS) + i) % len(fam_names)]](rng)
                if not any(q.lower() in seen for q, _ in item.queries):
                    break
            if condition == "screenshot":
                img, meta = render_window(item.title, item.lines, rng, terminal=True)
                item.rows = [(item.title, "")] + item.rows
            else:
                img, meta = render_item(item, rng, families)
        name = f"{i:04d}-{item.family}"
        if condition == "clean":
            img = on_background(img, rng, nrng)
            rel, fmt, q = f"clean/{name}.png", "PNG", 0
        elif condition == "rotated":
            img, angle = rotate(on_background(img, rng, nrng), rng)
            meta["angle"] = round(angle, 2)
            rel, fmt, q = f"rotated/{name}.jpg", "JPEG", rng.randint(70, 90)
        elif condition == "photographed":
            img, extra = photograph(img, rng, nrng)
            meta.update(extra)
            rel, fmt, q = f"photographed/{name}.jpg", "JPEG", rng.randint(60, 85)
        elif condition == "screenshot":
            rel, fmt, q = f"screenshot/{name}.png", "PNG", 0
        else:
            img, extra = scan(img, rng, nrng)
            meta.update(extra)
            rel, fmt, q = f"scanned_pdf/{name}.pdf", "PDF", 0
        if q:
            meta["jpeg_quality"] = q
        _save(img, docs / rel, fmt, q or 90)
        truth.append({"path": rel, "condition": condition, "family": item.family, "text": "\n".join(item.lines),
                      "lines": item.lines, "size": list(img.size), **meta})
        for query, style in item.queries:
            if query.lower() in seen:
                continue
            seen.add(query.lower())
            queries.append({"query": query, "relevant": [rel], "condition": condition, "family": item.family, "style": style})
    for j in range(photos):
        rng = random.Random(f"{seed}:photo:{j}")
        nrng = np.random.default_rng([seed, 10**6 + j])
        kind = PHOTO_KINDS[j % len(PHOTO_KINDS)]
        rel = f"no_text/{j:04d}-{kind}.jpg"
        _save(photo(kind, rng, nrng, photo_size), docs / rel, "JPEG", 85)
        truth.append({"path": rel, "condition": "no_text", "family": kind, "text": "", "lines": [],
                      "size": list(photo_size)})
    with open(out / "truth.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in truth)
    with open(out / "queries.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
    counts: dict[str, int] = {}
    for t in truth:
        counts[t["condition"]] = counts.get(t["condition"], 0) + 1
    return {"images": len(truth), "queries": len(queries), "per_condition": counts,
            "fonts": sorted({t.get("font", "") for t in truth if t.get("font")})}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder to write (replaced)")
    ap.add_argument("--n", type=int, default=60, help="pictures with words (spread over the conditions)")
    ap.add_argument("--photos", type=int, default=20, help="photos without words")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--photo-size", default="1600x1200", help="size of the photos without words, WxH")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.photo_size.lower().split("x"))
    summary = make_ocr_set(args.out, args.n, args.photos, args.seed, (w, h))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

