"""Names for simulated queues, agents and callers."""

from __future__ import annotations

import random

QUEUE_NAMES = (
    "Sales",
    "Support",
    "Billing",
    "Retention",
    "Technical Support",
    "Bookings",
    "Claims",
    "Returns",
    "Web Chat",
    "Premium Care",
    "Collections",
    "Onboarding",
    "Renewals",
    "Complaints",
    "Partner Desk",
    "Deliveries",
)

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ananya", "Aoife", "Astrid", "Beatriz", "Bilal", "Camille", "Carlos",
    "Chen", "Chloe", "Dara", "David", "Dmitri", "Elena", "Emeka", "Emma", "Farah", "Felix",
    "Freya", "Gabriel", "Grace", "Hana", "Hugo", "Ibrahim", "Ines", "Isaac", "Jamal", "Jana",
    "Javier", "Jin", "Kai", "Kalani", "Kenji", "Lars", "Leila", "Liam", "Lucia", "Maeve",
    "Malik", "Maria", "Mateo", "Mei", "Nadia", "Naveen", "Nina", "Noah", "Olga", "Omar",
    "Priya", "Rafael", "Rosa", "Ruth", "Sami", "Sofia", "Tariq", "Thea", "Tomas", "Yara",
)  # fmt: skip

LAST_NAMES = (
    "Abebe", "Adeyemi", "Alvarez", "Andersson", "Bauer", "Bianchi", "Brennan", "Castillo", "Chowdhury", "Costa",
    "Dubois", "Eriksen", "Fernandes", "Fischer", "Garcia", "Haddad", "Hansen", "Hoffmann", "Ivanova", "Jensen",
    "Kaur", "Kowalski", "Larsen", "Lovelace", "Martin", "Mensah", "Moreau", "Murphy", "Nakamura", "Nguyen",
    "Novak", "O'Brien", "Okafor", "Park", "Patel", "Petrov", "Quinn", "Rossi", "Santos", "Sato",
    "Schmidt", "Silva", "Singh", "Sokolov", "Tanaka", "Turing", "Varga", "Wang", "Yilmaz", "Zhang",
)  # fmt: skip


def queue_names(count: int) -> list[str]:
    """Return COUNT distinct queue names, numbering repeats once the list runs out."""
    names = []
    for i in range(count):
        base = QUEUE_NAMES[i % len(QUEUE_NAMES)]
        round_ = i // len(QUEUE_NAMES)
        names.append(base if round_ == 0 else f"{base} {round_ + 1}")
    return names


def person_names(rng: random.Random, count: int) -> list[str]:
    """Return COUNT distinct realistic full names drawn from RNG."""
    pairs = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(pairs)
    names = [f"{first} {last}" for first, last in pairs[:count]]
    # Past the 3,000 unique pairs, repeat them with a middle initial so names stay distinct.
    letters = "ABCDEFGHJKLMNPRSTVW"
    i = 0
    while len(names) < count:
        first, last = pairs[i % len(pairs)]
        names.append(f"{first} {letters[(i // len(pairs)) % len(letters)]}. {last}")
        i += 1
    return names
