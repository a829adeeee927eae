"""Synthetic sentences with names, postal addresses and dates for training the PII entity
tagger: Faker (MIT) supplies the values in many locales, the sentences are written here. Only the
PERSON, ADDRESS and DATE spans are labelled; companies, cities, countries, phone numbers, order
numbers and the like appear unlabelled, so that the tagger learns what is *not* one of the three.

    from pii_synthetic import generate
    rows = generate(4000, seed=1)   # [{"text", "spans": [{"type", "start", "end"}], "template"}]
"""
import datetime
import random

from faker import Faker

LOCALES = [
    "en_US", "en_GB", "en_CA", "en_AU", "en_IE", "en_IN", "de_DE", "de_AT", "fr_FR", "fr_CH", "es_ES", "es_MX", "it_IT", "nl_NL",
    "nl_BE", "pt_PT", "pt_BR", "pl_PL", "sv_SE", "da_DK", "no_NO", "fi_FI", "cs_CZ", "hu_HU", "ro_RO", "tr_TR", "el_GR", "ru_RU",
]

DATE_FORMATS = [
    "%m/%d/%Y", "%-m/%-d/%Y", "%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%B %-d, %Y", "%-d %B %Y", "%b %-d, %Y", "%-d %b %Y",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%A, %B %-d", "%B %Y", "%-d/%-m/%y", "%m-%d-%Y", "%B %-dth", "%A",
]

# {P} a person, {A} an address, {D} a date; {C} company, {Y} city, {N} country, {J} job, {O} a number, {X} product words.
TEMPLATES = [
    "My name is {P} and I live at {A}.",
    "Please ship the order to {P}, {A}.",
    "{P} was born on {D}.",
    "Date of birth: {D}",
    "DOB {D}, name {P}",
    "Hi, this is {P}. Can you update my address to {A}?",
    "How do I change my address to {A} for post mail?",
    "The package for {P} should go to {A} before {D}.",
    "I spoke with {P} from {C} yesterday about invoice {O}.",
    "{P} joined {C} as a {J} on {D}.",
    "Send the contract to {A}, attention {P}.",
    "Our office moved to {A}.",
    "Patient {P}, admitted {D}, lives at {A}.",
    "Can {P} and {P} both sign the lease?",
    "Meeting with {P} on {D} at the {Y} office.",
    "Thanks {P}! The refund for order {O} was issued on {D}.",
    "Dear {P},\nyour appointment is confirmed for {D}.\nRegards,\n{P}",
    "{P} ({J}, {C}) will present the results.",
    "Shipping address:\n{A}",
    "Billing address: {A}\nName: {P}",
    "Is {A} inside the delivery zone?",
    "I was born in {Y} on {D} and moved to {N} later.",
    "Forward my mail to {A} until {D}.",
    "{P} said the {X} stopped working after {D}.",
    "Contact {P} about the {X}, reference {O}.",
    "According to {P}, the {C} deal closed on {D}.",
    "My partner {P} is the account holder.",
    "Reservation under {P} for {D}.",
    "The last payment was received on {D}.",
    "Hello, I'm {P}, a {J} at {C} in {Y}.",
    "We visited {Y} and {N} last summer with {P}.",
    "Return address: {P}, {A}",
    "the new tenant {P} moves into {A} on {D}",
    "Can you check whether {P} has renewed the {X} subscription?",
    "{P} and I met at {C}.",
    "Ask {P} to call me back regarding ticket {O}.",
]

NEGATIVE_TEMPLATES = [
    "The {X} costs {O} dollars and ships from {Y}.",
    "{C} opened a new office in {Y}, {N}.",
    "Order {O} contains 3 items: {X}, {X} and {X}.",
    "What is the capital of {N}?",
    "The {J} role at {C} requires five years of experience.",
    "Flights from {Y} to {Y} are delayed by {O} minutes.",
    "Revenue grew 12% in the third quarter, driven by {X} sales.",
    "Please summarise the attached report in three bullet points.",
    "Translate 'good morning' into Spanish and French.",
    "Error code {O}: the {X} could not be found.",
    "How many people live in {Y}?",
    "The meeting is on the 3rd floor, room {O}.",
    "{C} and {C} announced a merger worth {O} million.",
    "Version {O} fixes a crash when the {X} is empty.",
    "Write a haiku about {N} in winter.",
]

PRODUCTS = ["router", "laptop", "coffee machine", "headphones", "printer", "vacuum cleaner", "phone case", "monitor", "subscription",
            "gift card", "license key", "backpack", "water filter", "smart watch", "keyboard"]


def _address(fake, rng):
    try:
        address = fake.address()
    except AttributeError:
        address = fake.street_address()
    r = rng.random()
    if r < 0.35:
        address = address.replace("\n", ", ")
    elif r < 0.5:
        try:
            address = fake.street_address()
        except AttributeError:
            pass
    elif r < 0.6:
        address = address.replace("\n", " ")
    if rng.random() < 0.15:
        address = address + ", " + fake.country()
    return address


def _person(fake, rng):
    r = rng.random()
    if r < 0.5:
        return fake.name()
    if r < 0.7:
        return fake.first_name()
    if r < 0.85:
        return fake.last_name()
    return fake.first_name() + " " + fake.last_name()


def _date(fake, rng):
    # Fixed bounds (not relative to today), so that a seed gives the same sentences on every run.
    d = fake.date_time_between(start_date=datetime.datetime(1935, 1, 1), end_date=datetime.datetime(2028, 12, 31))
    fmt = rng.choice(DATE_FORMATS)
    text = d.strftime(fmt)
    if fmt == "%B %-dth":
        text = d.strftime("%B ") + str(d.day) + ("st" if d.day % 10 == 1 and d.day != 11 else "nd" if d.day % 10 == 2 and d.day != 12 else "rd" if d.day % 10 == 3 and d.day != 13 else "th")
    return text


def _fill(template, fake, rng):
    text, spans = "", []
    i = 0
    while i < len(template):
        if template[i] == "{" and template[i + 2] == "}":
            slot = template[i + 1]
            kind, value = None, None
            if slot == "P":
                kind, value = "PERSON", _person(fake, rng)
            elif slot == "A":
                kind, value = "ADDRESS", _address(fake, rng)
            elif slot == "D":
                kind, value = "DATE", _date(fake, rng)
            elif slot == "C":
                value = fake.company()
            elif slot == "Y":
                value = fake.city()
            elif slot == "N":
                value = fake.country()
            elif slot == "J":
                value = fake.job().split(",")[0].lower()
            elif slot == "O":
                value = str(rng.choice([rng.randint(2, 999), rng.randint(1000, 99999), rng.randint(100000, 99999999)]))
            elif slot == "X":
                value = rng.choice(PRODUCTS)
            if kind:
                spans.append({"type": kind, "start": len(text), "end": len(text) + len(value)})
            text += value
            i += 3
        else:
            text += template[i]
            i += 1
    if rng.random() < 0.12:
        text = text.lower()  # people type without capitals; the tagger must not depend on them alone
    return {"text": text, "spans": spans}


def generate(count, seed=1):
    Faker.seed(seed)
    rng = random.Random(seed)
    fakers = {}
    rows = []
    for n in range(count):
        locale = rng.choice(LOCALES)
        if locale not in fakers:
            fakers[locale] = Faker(locale)
            fakers[locale].seed_instance(seed * 1000 + len(fakers))
        fake = fakers[locale]
        template = rng.choice(NEGATIVE_TEMPLATES if rng.random() < 0.2 else TEMPLATES)
        row = _fill(template, fake, rng)
        row["template"] = (NEGATIVE_TEMPLATES + TEMPLATES).index(template)
        rows.append(row)
    return rows
