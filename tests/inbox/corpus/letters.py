"""A generated corpus of German letters to a town hall, across ten file plan items.

Each letter mixes sentences typical of its matter with sentences any letter may contain, and
now and then a sentence of another matter, so the classifier has something to get wrong.
Seeded: the same seed gives the same corpus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz",
         "Braun", "Zimmermann", "Krüger", "Hartmann", "Lange", "Werner", "Krause", "Lehmann"]
FIRST = ["Anna", "Peter", "Sabine", "Thomas", "Julia", "Michael", "Katrin", "Stefan", "Laura",
         "Jan", "Monika", "Frank", "Lea", "Uwe", "Birgit", "Tim"]
STREETS = ["Hauptstraße", "Gartenweg", "Lindenallee", "Bahnhofstraße", "Kirchplatz",
           "Am Markt", "Rosenweg", "Feldstraße", "Schulstraße", "Mühlenweg"]
PUBLIC_DOMAINS = ["web.de", "gmx.de", "t-online.de", "gmail.com", "posteo.de", "outlook.de"]

GENERIC = [
    "Sehr geehrte Damen und Herren,", "ich wende mich heute mit folgendem Anliegen an Sie.",
    "Für Rückfragen stehe ich Ihnen gerne zur Verfügung.", "Vielen Dank für Ihre Mühe.",
    "Bitte bestätigen Sie mir den Eingang dieses Schreibens.",
    "Ich bitte um eine kurze Rückmeldung.", "Die Unterlagen füge ich in Kopie bei.",
    "Leider habe ich bisher keine Antwort erhalten.", "Ich bin telefonisch gut erreichbar.",
    "Mit freundlichen Grüßen",
]

# plan code -> (title, typical sentences, typical sender domains, share of invoices)
MATTERS: dict[str, tuple[str, list[str], list[str], float]] = {
    "63.01": ("Bauanträge", [
        "hiermit reiche ich den Bauantrag für den Neubau einer Garage ein.",
        "Die Bauzeichnungen und der Lageplan liegen bei.",
        "Bitte prüfen Sie die Abstandsflächen zum Nachbargrundstück {street} {n}.",
        "Der Architekt hat die Statik nachgereicht.", "Wir beantragen eine Baugenehmigung.",
        "Der Bebauungsplan sieht eine Dachneigung von {n} Grad vor.",
        "Die Nachbarn haben dem Carport zugestimmt.", "Die Baugrube wird nächste Woche ausgehoben.",
    ], ["architekten-nord.de", "bauplan-partner.de"], 0.0),
    "32.10": ("Gewerbeangelegenheiten", [
        "ich möchte mein Gewerbe zum {n}. des Monats anmelden.",
        "Die Gewerbeanmeldung für meinen Friseursalon liegt bei.",
        "Bitte melden Sie mein Gewerbe ab, der Betrieb wird eingestellt.",
        "Ich beantrage eine Gaststättenerlaubnis für die Schankwirtschaft.",
        "Der Handelsregisterauszug ist beigefügt.", "Mein Imbiss zieht in die {street} um.",
        "Für den Reisegewerbebetrieb benötige ich eine Reisegewerbekarte.",
    ], ["ihk-region.de", "steuerberatung-kanzlei.de"], 0.0),
    "22.30": ("Hundesteuer", [
        "ich habe einen Hund angeschafft und möchte ihn zur Hundesteuer anmelden.",
        "Unser Hund ist leider verstorben, bitte melden Sie ihn ab.",
        "Die Hundesteuermarke ist verloren gegangen.",
        "Es handelt sich um einen Mischling, {n} Monate alt.",
        "Für den Blindenführhund beantrage ich Steuerbefreiung.",
        "Der Steuerbescheid für den Hund enthält einen Fehler.",
    ], ["tierheim-verein.de"], 0.0),
    "51.20": ("Kindertagesstätten", [
        "wir möchten unsere Tochter für einen Kitaplatz anmelden.",
        "Bitte berechnen Sie die Elternbeiträge für die Kita neu.",
        "Unser Sohn soll ab dem {n}. August in die Krippe gehen.",
        "Wir beantragen die Ermäßigung der Kita-Gebühren wegen geringen Einkommens.",
        "Die Betreuungszeit in der Kindertagesstätte soll erweitert werden.",
        "Das Kind wechselt in den Hort der Grundschule.",
    ], ["kita-sonnenschein.de", "elternrat-kita.de"], 0.0),
    "67.40": ("Friedhofswesen", [
        "wir bitten um Verlängerung des Nutzungsrechts an der Grabstätte.",
        "Die Urnenbeisetzung soll am {n}. stattfinden.",
        "Der Grabstein wurde vom Steinmetz gesetzt, bitte genehmigen Sie ihn.",
        "Für die Grabpflege beantragen wir eine Genehmigung.",
        "Die Friedhofsgebühren für das Wahlgrab erscheinen uns zu hoch.",
        "Das Reihengrab soll aufgelöst werden.",
    ], ["bestattungen-frieden.de", "steinmetz-meister.de"], 0.0),
    "66.20": ("Straßen und Sondernutzung", [
        "ich beantrage eine Sondernutzungserlaubnis für einen Container vor dem Haus {street} {n}.",
        "Für das Straßenfest benötigen wir eine Straßensperrung.",
        "Der Gehweg in der {street} ist stark beschädigt.",
        "Wir möchten Tische und Stühle vor dem Café auf dem Gehweg aufstellen.",
        "Das Schlagloch vor Hausnummer {n} ist gefährlich.",
        "Die Straßenbeleuchtung in der {street} ist seit Tagen ausgefallen.",
    ], ["eventagentur-stadtfest.de", "umzug-express.de"], 0.0),
    "50.30": ("Wohngeld", [
        "hiermit beantrage ich Wohngeld für meine Mietwohnung.",
        "Die Mietbescheinigung des Vermieters liegt bei.",
        "Mein Einkommen hat sich geändert, bitte berechnen Sie den Mietzuschuss neu.",
        "Ich lege Widerspruch gegen den Wohngeldbescheid ein.",
        "Die Nebenkostenabrechnung reiche ich nach.",
        "Im Haushalt leben {n} Personen.",
    ], ["hausverwaltung-immo.de", "mieterverein-ort.de"], 0.0),
    "11.10": ("Personalangelegenheiten", [
        "hiermit bewerbe ich mich auf die ausgeschriebene Stelle als Sachbearbeiterin.",
        "Meinen Lebenslauf und die Zeugnisse füge ich bei.",
        "Ich beantrage Elternzeit ab dem {n}. des Monats.",
        "Bitte übersenden Sie mir eine Bescheinigung über die Beschäftigungszeiten.",
        "Die Reisekostenabrechnung für die Fortbildung liegt bei.",
        "Ich bitte um Versetzung in das Ordnungsamt.",
    ], ["jobportal-bewerbung.de"], 0.0),
    "20.50": ("Beschaffung", [
        "anbei erhalten Sie unsere Rechnung über die Lieferung von Büromaterial.",
        "Bitte überweisen Sie den Betrag von {n}0,00 Euro innerhalb von 14 Tagen.",
        "Gemäß Ihrer Bestellung haben wir die Druckerpatronen geliefert.",
        "Wir bieten Ihnen Reinigungsmittel zu günstigen Konditionen an.",
        "Das Angebot für die Wartung der Kopierer liegt bei.",
        "Die Gutschrift für die Rücksendung ist verrechnet.",
    ], ["buerobedarf-schulz.de", "kopiertechnik-service.de", "reinigung-profi.de"], 0.6),
    "35.10": ("Veranstaltungen und Kultur", [
        "wir planen ein Konzert im Stadtpark und bitten um Genehmigung.",
        "Für die Ausstellung in der Stadthalle benötigen wir den Saal am {n}.",
        "Der Heimatverein beantragt einen Zuschuss für das Dorffest.",
        "Die Musikschule bittet um Förderung des Sommerkonzerts.",
        "Die Lesung in der Stadtbibliothek soll verschoben werden.",
        "Wir möchten einen Stand auf dem Weihnachtsmarkt anmelden.",
    ], ["heimatverein-ort.de", "kulturbuero-events.de"], 0.0),
}


@dataclass(frozen=True)
class Letter:
    """A generated letter with the truth about it."""

    plan_code: str
    subject: str
    text: str
    sender: str
    kind: str


def _fill(sentence: str, rng: random.Random) -> str:
    return sentence.format(street=rng.choice(STREETS), n=rng.randint(2, 48))


def _typos(text: str, rng: random.Random, rate: float) -> str:
    # OCR-like noise: a few characters dropped or doubled.
    out = []
    for ch in text:
        roll = rng.random()
        if roll < rate / 2:
            continue
        out.append(ch + ch if roll < rate else ch)
    return "".join(out)


def generate(count: int, seed: int = 4, noise: float = 0.01) -> list[Letter]:
    """`count` letters spread evenly over the matters."""
    rng = random.Random(seed)
    codes = sorted(MATTERS)
    letters = []
    for i in range(count):
        code = codes[i % len(codes)]
        title, typical, domains, invoice_share = MATTERS[code]
        person = f"{rng.choice(FIRST)} {rng.choice(NAMES)}"
        business = rng.random() < 0.35
        domain = rng.choice(domains) if business else rng.choice(PUBLIC_DOMAINS)
        sentences = [rng.choice(GENERIC[:2])]
        sentences += [_fill(s, rng) for s in rng.sample(typical, k=rng.randint(1, 3))]
        if rng.random() < 0.25:  # a stray sentence of another matter
            other = MATTERS[rng.choice([c for c in codes if c != code])][1]
            sentences.append(_fill(rng.choice(other), rng))
        sentences += rng.sample(GENERIC[2:-1], k=rng.randint(1, 3))
        sentences += [GENERIC[-1], person, f"{rng.choice(STREETS)} {rng.randint(1, 90)}"]
        text = _typos("\n".join(sentences), rng, noise)
        dated = f"Ihr Schreiben vom {rng.randint(1, 28)}.{rng.randint(1, 12)}."
        subject = rng.choice([title, dated, "Anfrage", "Antrag", f"{title} – {person}",
                              "Nachreichung"])
        kind = "invoice" if rng.random() < invoice_share else "incoming"
        letters.append(Letter(code, subject, text,
                              f"{person.split()[0].lower()}.{rng.randint(1, 999)}@{domain}",
                              kind))
    return letters
