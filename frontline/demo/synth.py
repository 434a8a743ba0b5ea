"""A seeded generator of realistic synthetic companies (the demo and the benchmarks use it).

``generate_company(n)`` returns departments, employees and absences as dicts keyed exactly like the
roster CSV columns (see README, *Roster import*), with typed values: ``date`` objects, lists for
``languages``/``skills``, ``bool`` for ``mentor``, ``int`` for ``mentor_capacity`` (0 for non-mentors)
and ``None`` for empty optional fields. ``write_csvs`` writes the three roster files.

The same ``(n_employees, seed, today)`` always gives the same company.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from frontline.core import clock
from frontline.people.roster_csv import ABSENCE_COLUMNS, DEPARTMENT_COLUMNS, EMPLOYEE_COLUMNS

SUPPORT = "Support"
EMAIL_DOMAIN = "example.com"

# Departments in the order they appear as the company grows; weight = relative size.
# (name, weight, max_away_fraction override or None, department skills, titles)
_DEPARTMENTS: list[tuple[str, float, float | None, list[str], list[str]]] = [
    (
        SUPPORT,
        0.0,
        None,
        ["troubleshooting", "returns", "escalations", "knowledge base"],
        ["Support Specialist", "Senior Support Specialist", "Support Lead"],
    ),
    (
        "Engineering",
        0.26,
        None,
        ["python", "go", "kubernetes", "postgres", "api design", "frontend"],
        ["Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager"],
    ),
    (
        "Sales",
        0.13,
        0.12,
        ["negotiation", "crm", "enterprise deals", "forecasting"],
        ["Account Executive", "Sales Development Rep", "Sales Manager"],
    ),
    (
        "Product",
        0.06,
        None,
        ["roadmaps", "user research", "analytics", "pricing"],
        ["Product Manager", "Senior Product Manager", "Group Product Manager"],
    ),
    (
        "Marketing",
        0.08,
        None,
        ["content", "seo", "campaigns", "brand"],
        ["Marketing Manager", "Content Strategist", "Growth Marketer"],
    ),
    (
        "Operations",
        0.08,
        0.15,
        ["logistics", "procurement", "vendor management", "warehousing"],
        ["Operations Analyst", "Logistics Coordinator", "Operations Manager"],
    ),
    (
        "Finance",
        0.05,
        None,
        ["accounting", "invoicing", "tax", "fp&a"],
        ["Accountant", "Financial Analyst", "Controller"],
    ),
    (
        "People",
        0.04,
        None,
        ["recruiting", "onboarding", "benefits", "payroll"],
        ["Recruiter", "People Partner", "People Operations Specialist"],
    ),
    (
        "Design",
        0.05,
        None,
        ["ux", "ui", "illustration", "prototyping"],
        ["Product Designer", "Senior Product Designer", "UX Researcher"],
    ),
    (
        "Hardware",
        0.07,
        0.15,
        ["firmware", "pcb design", "manufacturing", "quality"],
        ["Hardware Engineer", "Firmware Engineer", "Test Engineer"],
    ),
    ("Legal", 0.02, None, ["contracts", "privacy", "compliance"], ["Counsel", "Paralegal", "Compliance Officer"]),
    (
        "Data",
        0.04,
        None,
        ["sql", "machine learning", "dashboards", "statistics"],
        ["Data Analyst", "Data Scientist", "Analytics Engineer"],
    ),
    ("Security", 0.02, None, ["appsec", "incident response", "iam"], ["Security Engineer", "Security Analyst"]),
    (
        "Customer Success",
        0.06,
        None,
        ["renewals", "onboarding", "account health"],
        ["Customer Success Manager", "Implementation Specialist"],
    ),
    ("IT", 0.02, None, ["laptops", "sso", "networking"], ["IT Specialist", "Systems Administrator"]),
]

# Skills everyone can have: the product areas observations are filed against.
PRODUCT_SKILLS = ["billing", "checkout", "export", "onboarding", "mobile app", "hardware", "shipping", "account"]

# Locales: (weight, [(timezone, country)], local languages, first names, last names, family-name-first)
# Names are (display, ascii) pairs; the ascii form builds the e-mail address.
_Name = tuple[str, str]


def _n(*names: str) -> list[_Name]:
    out = []
    for entry in names:
        display, _, ascii_ = entry.partition("|")
        out.append((display, ascii_ or _ascii(display)))
    return out


def _ascii(text: str) -> str:
    folded = unicodedata.normalize(
        "NFKD",
        text.replace("ð", "d")
        .replace("þ", "th")
        .replace("ø", "o")
        .replace("æ", "ae")
        .replace("ß", "ss")
        .replace("đ", "d")
        .replace("Đ", "D")
        .replace("ł", "l")
        .replace("ı", "i")
        .replace("Ø", "O")
        .replace("Æ", "AE"),
    )
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in "-'")).lower().replace("'", "")


_LOCALES: list[tuple[float, list[tuple[str, str]], list[str], list[_Name], list[_Name], bool]] = [
    (
        0.26,
        [
            ("America/New_York", "US"),
            ("America/Chicago", "US"),
            ("America/Denver", "US"),
            ("America/Los_Angeles", "US"),
        ],
        [],
        _n(
            "James",
            "Mary",
            "Olivia",
            "Liam",
            "Emma",
            "Noah",
            "Ava",
            "Ethan",
            "Sophia",
            "Mason",
            "Chloé",
            "Zoë",
            "Aaliyah",
            "DeShawn",
            "Madison",
            "Tyler",
        ),
        _n(
            "Smith",
            "Johnson",
            "Williams",
            "Brown",
            "Jones",
            "Miller",
            "Davis",
            "García",
            "Rodríguez",
            "Wilson",
            "O'Brien",
            "Washington",
            "Nguyen",
            "Kim",
        ),
        False,
    ),
    (
        0.12,
        [("Europe/Berlin", "DE")],
        ["de"],
        _n(
            "Jürgen",
            "Anna",
            "Lukas",
            "Leonie",
            "Maximilian",
            "Sophie",
            "Jörg",
            "Lena",
            "Felix",
            "Käthe",
            "Björn",
            "Marie",
        ),
        _n(
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weiß",
            "Größer",
            "Becker",
            "Hoffmann",
            "Schäfer",
            "Köhler",
            "Zimmermann",
            "Krüger",
        ),
        False,
    ),
    (
        0.07,
        [("Europe/London", "GB")],
        [],
        _n("Oliver", "Amelia", "George", "Isla", "Harry", "Siobhán", "Rhys", "Niamh", "Callum", "Freya"),
        _n("Taylor", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Hughes", "Patel", "Ó Súilleabháin"),
        False,
    ),
    (
        0.05,
        [("Europe/Paris", "FR")],
        ["fr"],
        _n("Amélie", "Théo", "Léa", "Hugo", "Zoé", "Gaëlle", "François", "Inès", "Benoît", "Élodie"),
        _n("Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Girard", "Rousseau", "Chevalier", "Bézier"),
        False,
    ),
    (
        0.05,
        [("Europe/Madrid", "ES")],
        ["es"],
        _n("José", "María", "Lucía", "Martín", "Sofía", "Álvaro", "Nuria", "Íñigo", "Begoña", "Raúl"),
        _n("Núñez", "García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Muñoz", "Ibáñez"),
        False,
    ),
    (
        0.03,
        [("Europe/Stockholm", "SE")],
        ["sv"],
        _n("Zoë", "Åsa", "Björn", "Linnéa", "Elias", "Maja", "Göran", "Ebba", "Oskar"),
        _n("Ångström", "Lindqvist", "Johansson", "Åkesson", "Öberg", "Bergström", "Sjöberg", "Nyström"),
        False,
    ),
    (
        0.01,
        [("Atlantic/Reykjavik", "IS")],
        ["is"],
        _n("Ólafur", "Guðrún", "Sigríður", "Þórður", "Ragnhildur", "Einar", "Kristín"),
        _n("Jónsson", "Sigurðardóttir", "Guðmundsson", "Þórsdóttir", "Ólafsson", "Magnúsdóttir"),
        False,
    ),
    (
        0.03,
        [("Europe/Warsaw", "PL")],
        ["pl"],
        _n("Łukasz", "Zofia", "Paweł", "Małgorzata", "Wojciech", "Agnieszka", "Michał"),
        _n("Kowalski", "Wiśniewska", "Wójcik", "Kamińska", "Lewandowski", "Zieliński", "Dąbrowska"),
        False,
    ),
    (
        0.02,
        [("Europe/Athens", "GR")],
        ["el"],
        _n("Γιώργος|giorgos", "Μαρία|maria", "Νίκος|nikos", "Ελένη|eleni", "Δημήτρης|dimitris"),
        _n("Παπαδόπουλος|papadopoulos", "Οικονόμου|oikonomou", "Γεωργίου|georgiou", "Νικολάου|nikolaou"),
        False,
    ),
    (
        0.02,
        [("Europe/Istanbul", "TR")],
        ["tr"],
        _n("Ayşe", "Mehmet", "Çağla", "Emre", "Şebnem", "Oğuz", "Gökhan", "İlayda"),
        _n("Yılmaz", "Kaya", "Demir", "Çelik", "Şahin", "Öztürk", "Aydın"),
        False,
    ),
    (
        0.05,
        [("Asia/Tokyo", "JP")],
        ["ja"],
        _n("太郎|taro", "花子|hanako", "健|ken", "由美|yumi", "翔太|shota", "さくら|sakura", "大輔|daisuke"),
        _n("佐藤|sato", "鈴木|suzuki", "高橋|takahashi", "田中|tanaka", "渡辺|watanabe", "伊藤|ito", "山本|yamamoto"),
        True,
    ),
    (
        0.04,
        [("Asia/Shanghai", "CN")],
        ["zh"],
        _n("伟|wei", "芳|fang", "娜|na", "敏|min", "静|jing", "磊|lei", "洋|yang", "婷|ting"),
        _n("王|wang", "李|li", "张|zhang", "刘|liu", "陈|chen", "杨|yang", "黄|huang"),
        True,
    ),
    (
        0.02,
        [("Asia/Seoul", "KR")],
        ["ko"],
        _n("민준|minjun", "서연|seoyeon", "지훈|jihoon", "하은|haeun", "도윤|doyoon"),
        _n("김|kim", "이|lee", "박|park", "최|choi", "정|jung"),
        True,
    ),
    (
        0.03,
        [("Asia/Ho_Chi_Minh", "VN")],
        ["vi"],
        _n("Thị Mai", "Văn Hùng", "Thị Lan", "Minh Tuấn", "Ngọc Ánh", "Quốc Bảo", "Thu Hương"),
        _n("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng"),
        True,
    ),
    (
        0.05,
        [("Asia/Kolkata", "IN")],
        ["hi"],
        _n("Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Diya", "Arjun", "Saanvi", "Karthik"),
        _n("Sharma", "Patel", "Iyer", "Reddy", "Gupta", "Nair", "Singh", "Mukherjee"),
        False,
    ),
    (
        0.04,
        [("America/Sao_Paulo", "BR")],
        ["pt"],
        _n("João", "Ana", "Gabriel", "Letícia", "Thiago", "Beatriz", "Conceição", "Vinícius"),
        _n("Silva", "Santos", "Oliveira", "Souza", "Araújo", "Gonçalves", "Magalhães"),
        False,
    ),
    (
        0.03,
        [("America/Mexico_City", "MX")],
        ["es"],
        _n("Alejandro", "Guadalupe", "Ximena", "Santiago", "Fernanda", "Andrés", "Renée"),
        _n("Hernández", "González", "Ramírez", "Cruz", "Flores", "Jiménez", "Villaseñor"),
        False,
    ),
    (
        0.02,
        [("Australia/Sydney", "AU")],
        [],
        _n("Jack", "Charlotte", "Lachlan", "Matilda", "Kai", "Ruby"),
        _n("Murphy", "Kelly", "Campbell", "Anderson", "Tran", "Nguyen"),
        False,
    ),
    (
        0.02,
        [("Africa/Lagos", "NG")],
        ["yo"],
        _n("Adébáyọ̀|adebayo", "Chiamaka", "Olúwaseun|oluwaseun", "Ngozi", "Ifeoma", "Tunde"),
        _n("Okafor", "Adéyẹmí|adeyemi", "Balogun", "Eze", "Okonkwo"),
        False,
    ),
    (
        0.02,
        [("Africa/Cairo", "EG")],
        ["ar"],
        _n("محمد|mohamed", "فاطمة|fatma", "أحمد|ahmed", "نور|nour", "يوسف|youssef"),
        _n("حسن|hassan", "إبراهيم|ibrahim", "السيد|elsayed", "مصطفى|mostafa"),
        False,
    ),
    (
        0.02,
        [("America/Toronto", "CA")],
        ["fr"],
        _n("Émile", "Chloé", "Gabrielle", "Noël", "Maëlle", "Étienne"),
        _n("Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier"),
        False,
    ),
]


@dataclass
class SyntheticCompany:
    """A generated company: rows keyed like the roster CSV columns (see the module docstring)."""

    departments: list[dict[str, Any]] = field(default_factory=list)
    employees: list[dict[str, Any]] = field(default_factory=list)
    absences: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 7
    today: date = field(default_factory=clock.today)

    @property
    def support_department(self) -> str:
        return SUPPORT

    @property
    def new_hires(self) -> list[dict[str, Any]]:
        return [e for e in self.employees if e["hire_date"] > self.today]


def department_count(n_employees: int) -> int:
    """How many departments a company of ``n_employees`` has (8 to 15, growing with size)."""
    if n_employees < 40:
        return min(n_employees, max(2, min(8, n_employees // 4)))
    if n_employees < 250:
        return 8
    if n_employees < 1000:
        return 10
    if n_employees < 10000:
        return 12
    return 15


_Department = tuple[str, float, float | None, list[str], list[str]]
_Locale = tuple[float, list[tuple[str, str]], list[str], list[_Name], list[_Name], bool]
HIRE_SPAN_DAYS = 8 * 365


def generate_company(n_employees: int, seed: int = 7, today: date | None = None) -> SyntheticCompany:
    """Generate a realistic company of ``n_employees`` people (deterministic for a given seed and today).

    Phases, in the order they draw from the one seeded random stream (so the order is part of the
    output): department of each person → the people → departments with their heads → absences."""
    if n_employees < 1:
        raise ValueError("n_employees must be at least 1")
    today = today or clock.today()
    rng = random.Random(seed)
    depts = _DEPARTMENTS[: department_count(n_employees)]
    dept_of = _department_of_each(n_employees, depts, rng)
    employees = _employees(n_employees, depts, dept_of, today, rng)
    _ensure_a_support_mentor(employees)
    departments = _department_rows(depts, employees)
    _managers(departments, employees)
    absences = _absences(employees, today, rng)
    return SyntheticCompany(departments=departments, employees=employees, absences=absences, seed=seed, today=today)


def department_sizes(n_employees: int, n_departments: int) -> tuple[int, list[int]]:
    """(Support's size, the other departments' sizes): Support ~9%, the rest by weight; every department
    gets at least one person (a tiny company puts what is left over into Support)."""
    others = _DEPARTMENTS[1:n_departments]
    n_support = max(1, round(n_employees * 0.09))
    total_w = sum(d[1] for d in others) or 1.0
    sizes = [max(1, int((n_employees - n_support) * d[1] / total_w)) for d in others]
    leftover = n_employees - n_support - sum(sizes)
    i = 0
    while leftover != 0 and others:
        step = 1 if leftover > 0 else -1
        j = i % len(sizes)
        if step > 0 or sizes[j] > 1:
            sizes[j] += step
            leftover -= step
        i += 1
        if i > 10 * n_employees + 100:  # tiny companies: put the rest into Support
            n_support += leftover
            leftover = 0
    return n_support, sizes


def _department_of_each(n_employees: int, depts: list[_Department], rng: random.Random) -> list[int]:
    """Index (into ``depts``) of each person's department, shuffled."""
    n_support, sizes = department_sizes(n_employees, len(depts))
    dept_of: list[int] = [0] * n_support
    for k, size in enumerate(sizes, start=1):
        dept_of.extend([k] * size)
    rng.shuffle(dept_of)
    return dept_of


def _employees(
    n_employees: int, depts: list[_Department], dept_of: list[int], today: date, rng: random.Random
) -> list[dict[str, Any]]:
    loc_weights = [loc[0] for loc in _LOCALES]
    locale_idx = rng.choices(range(len(_LOCALES)), weights=loc_weights, k=n_employees)
    used_emails: set[str] = set()
    return [
        _employee(idx, depts[dept_of[idx]], _LOCALES[locale_idx[idx]], used_emails, today, rng)
        for idx in range(n_employees)
    ]


def _employee(
    idx: int, d: _Department, locale: _Locale, used_emails: set[str], today: date, rng: random.Random
) -> dict[str, Any]:
    """One person: name and address from their locale, languages, skills, hire date, last rotation, mentoring."""
    _w, places, local_langs, firsts, lasts, family_first = locale
    tz, country = places[0] if len(places) == 1 else rng.choice(places)
    name, email = _name_and_email(idx, firsts, lasts, family_first, used_emails, rng)
    langs = list(local_langs)
    if not langs or rng.random() < 0.92:
        langs = ["en", *langs]
    if rng.random() < 0.15:
        extra = rng.choice(["es", "fr", "de", "pt", "zh", "ja"])
        if extra not in langs:
            langs.append(extra)
    skills = rng.sample(PRODUCT_SKILLS, rng.randint(1, 2)) + rng.sample(d[3], min(len(d[3]), rng.randint(1, 2)))
    skills = list(dict.fromkeys(skills))  # "onboarding" is both a product area and a People skill
    new_hire, hire, last_rotation = _hire_and_last_rotation(d[0] == SUPPORT, today, rng)
    mentor = d[0] == SUPPORT and not new_hire and rng.random() < 0.7
    return {
        "employee_id": f"E{idx + 1:06d}",
        "name": name,
        "email": email,
        "department": d[0],
        "title": rng.choice(d[4]),
        "hire_date": hire,
        "timezone": tz,
        "country": country,
        "languages": langs,
        "skills": skills,
        "mentor": mentor,
        "mentor_capacity": rng.randint(1, 3) if mentor else 0,
        "last_rotation": last_rotation,
        "preferred_weeks": [],  # soft wishes: none in the synthetic company (the columns are shown empty)
        "unavailable_weeks": [],
    }


def _name_and_email(
    idx: int, firsts: list[_Name], lasts: list[_Name], family_first: bool, used_emails: set[str], rng: random.Random
) -> tuple[str, str]:
    first, last = rng.choice(firsts), rng.choice(lasts)
    if family_first:
        sep = "" if _is_cjk(last[0]) else " "  # 佐藤太郎, 김민준; but Nguyễn Thị Mai
        name = f"{last[0]}{sep}{first[0]}"
    else:
        name = f"{first[0]} {last[0]}"
    local = f"{first[1]}.{last[1]}"
    email = f"{local}@{EMAIL_DOMAIN}"
    if email in used_emails:
        email = f"{local}{idx + 1}@{EMAIL_DOMAIN}"
    used_emails.add(email)
    return name, email


def _hire_and_last_rotation(is_support: bool, today: date, rng: random.Random) -> tuple[bool, date, date | None]:
    """(new hire?, hire date, last rotation): one in ten starts within the coming year."""
    new_hire = rng.random() < 0.10
    if new_hire:
        hire = today + timedelta(days=rng.randint(1, 365))
    else:
        # more recent hires are more common (a growing company)
        hire = today - timedelta(days=int(HIRE_SPAN_DAYS * rng.random() ** 1.6))
    last_rotation = None
    # A company already running rotations: most people rotated within the last cycle, so due dates
    # spread over the coming year; about one in ten has never rotated (due now).
    if not new_hire and not is_support and rng.random() < 0.9:
        days_ago = rng.randint(0, 380)
        candidate = today - timedelta(days=days_ago)
        if candidate > hire:
            last_rotation = candidate
    return new_hire, hire, last_rotation


def _ensure_a_support_mentor(employees: list[dict[str, Any]]) -> None:
    """Make sure a support team always has at least one mentor."""
    support_people = [e for e in employees if e["department"] == SUPPORT]
    if support_people and not any(e["mentor"] for e in support_people):
        support_people[0]["mentor"] = True
        support_people[0]["mentor_capacity"] = 2


def _department_rows(depts: list[_Department], employees: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The departments that have people, each headed by its longest-serving member."""
    head_of: dict[str, dict[str, Any]] = {}
    for e in employees:
        cur = head_of.get(e["department"])
        if cur is None or e["hire_date"] < cur["hire_date"]:
            head_of[e["department"]] = e
    departments = []
    for d in depts:
        head = head_of.get(d[0])
        if head is None:
            continue
        departments.append(
            {"department": d[0], "head_name": head["name"], "head_email": head["email"], "max_away_fraction": d[2]}
        )
    return departments


def _managers(departments: list[dict[str, Any]], employees: list[dict[str, Any]]) -> None:
    """Everyone's manager is their department head (who has none); no random draws."""
    head_email = {d["department"]: d["head_email"] for d in departments}
    for e in employees:
        manager = head_email.get(e["department"])
        e["manager_email"] = manager if manager != e["email"] else None


def _absences(employees: list[dict[str, Any]], today: date, rng: random.Random) -> list[dict[str, Any]]:
    """About 30% of people have PTO (one or two spells) in the coming months; a few take parental leave."""
    absences: list[dict[str, Any]] = []
    for e in employees:
        if rng.random() >= 0.30:
            continue
        n_spells = 2 if rng.random() < 0.2 else 1
        cursor = max(today - timedelta(days=30), e["hire_date"])
        for _ in range(n_spells):
            start = cursor + timedelta(days=rng.randint(0, 160))
            if rng.random() < 0.03:
                weeks, reason = rng.randint(8, 16), "Parental leave"
            else:
                weeks, reason = rng.randint(1, 3), "PTO"
            end = start + timedelta(days=7 * weeks - 1)
            absences.append({"employee_id": e["employee_id"], "start": start, "end": end, "reason": reason})
            cursor = end + timedelta(days=14)
    return absences


def _is_cjk(text: str) -> bool:
    return any("\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in text)


def format_cell(value: Any) -> str:
    """A typed value as it appears in a roster CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def _employee_cells(row: dict[str, Any]) -> dict[str, str]:
    cells = {c: format_cell(row.get(c)) for c in EMPLOYEE_COLUMNS}
    if not row.get("mentor"):
        cells["mentor_capacity"] = ""
    return cells


def write_csvs(company: SyntheticCompany, directory: Path) -> dict[str, Path]:
    """Write ``departments.csv``, ``employees.csv`` and ``absences.csv`` (UTF-8) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "departments": (
            DEPARTMENT_COLUMNS,
            company.departments,
            lambda r: {c: format_cell(r.get(c)) for c in DEPARTMENT_COLUMNS},
        ),
        "employees": (EMPLOYEE_COLUMNS, company.employees, _employee_cells),
        "absences": (ABSENCE_COLUMNS, company.absences, lambda r: {c: format_cell(r.get(c)) for c in ABSENCE_COLUMNS}),
    }
    paths: dict[str, Path] = {}
    for key, (columns, rows, cells) in files.items():
        path = directory / f"{key}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(cells(r) for r in rows)
        paths[key] = path
    return paths
