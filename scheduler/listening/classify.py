"""Reading a customer's reply: rules and lexicons in Spanish and English, no hosted model.

The rule that matters: when in doubt, a person reads it. A reply is `needs_human` when it is an
objection or a question, carries a score of 6 or less, asks in free text to stop, or when the
rules are not confident. Only clear praise, high scores, plain acknowledgements and bare consent
keywords are left to the machine.

Text is folded (lower case, no accents, letters repeated three times or more squeezed: "graciasss"
-> "gracias"), negation flips the polarity of the next few words in its clause ("no esta mal",
"not bad"), intensifiers weigh more ("muy mal"), emoji count as words, an order that has not come
is a complaint however calmly put ("todavia no recibo nada"). Owners may add their own words per
label (`Lexicon.extended`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from scheduler.listening.keywords import Intent, fold, read_consent


class Label(StrEnum):
    OBJECTION = "objection"
    QUESTION = "question"
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    AUTOMATIC = "automatic"  # an out-of-office or a delivery report: never read as a reply


@dataclass(frozen=True)
class Reading:
    text: str
    label: Label
    score: int | None  # a 0-10 rating found in the text
    confidence: float
    needs_human: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "label": self.label.value,
            "score": self.score,
            "confidence": round(self.confidence, 2),
            "needs_human": self.needs_human,
        }


# --- lexicons: folded words and phrases; phrases are matched on word boundaries -------------

# Single words per label (folded). Phrases, matched first, are in PHRASES below.
NEGATIVE = """
mal malo mala malisimo malisima pesimo pesima horrible terrible fatal basura porqueria estafa
estafadores robo ladrones decepcion decepcionado decepcionada decepcionante molesto molesta
enojado enojada furioso furiosa harto harta indignado indignada queja quejas reclamo reclamos
reclamar roto rota rotos rotas rompio rompe quebrado quebrada rajado rajada falla fallas fallo
defecto defectuoso defectuosa danado danada averiado averiada descompuesto descompuesta
abollado abollada rayado rayada sucio sucia incompleto incompleta tarde demora demoras demoro
demoran demoraron demorando tardan tardaron tardando retraso retrasado retrasada atrasado atrasada
atraso devolucion devolver devuelvan reembolso reembolsen cobraron caro carisimo
grosero grosera maltrato mentira mentiras engano enganaron ruido ruidoso chispas humo gotea
fuga goteando goteo jamas cancelar cancelen anular falta faltan ignoraron ignoran huele olor
apesta
bad awful terrible horrible worst poor useless garbage trash junk scam fraud disappointed
disappointing angry upset annoyed furious broken broke breaks cracked damaged defective faulty
dented scratched dirty missing wrong late delayed delay overdue refund return overcharged expensive
overpriced rude liar lied noisy leaking leaks sparks smoke unhappy cancel complaint complain
problem problems issue issues ignoring ignored ignore smells smell stinks
"""
POSITIVE = """
bien bueno buena buenisimo buenisima excelente genial perfecto perfecta increible maravilla
encanta encanto encantado encantada feliz contento contenta satisfecho satisfecha super chevere
bacan chido guay lindo linda hermoso hermosa comodo rapido rapida recomiendo recomendado
gracias agradecido agradecida agradezco amable atentos crack capos barbaro joya macanudo
good great excellent awesome amazing perfect love loved loving happy satisfied glad nice
fantastic wonderful superb recommend recommended thanks thx ty tysm fast quick helpful kind best
perfectly appreciate appreciated
"""
QUESTION = """
como cuando donde cual cuales cuanto cuanta cuantos cuantas quien quienes puedo pueden podrian
podria tienen hay horario necesito quisiera consulta pregunta duda dudas informacion
instalacion instalar manual factura boleta repuesto repuestos accesorio
how when where which who what why warranty invoice receipt install installation
"""
NEUTRAL = """
ok okay oki vale listo recibido entendido dale k kk okis luego despues normal ya orale
ahorita noted fine sure alright later received
"""
# Lukewarm: not a complaint, not praise either; a person should see it.
LUKEWARM = (
    "regular",
    "mas o menos",
    "maso",
    "meh",
    "i guess",
    "so so",
    "ni fu ni fa",
    "ahi va",
    "podria ser mejor",
    "could be better",
    "not great",
    "nada del otro mundo",
)
# Sarcasm and contrast: the words may be kind, the message is not; a person reads it.
DOUBTFUL = re.compile(
    r"\b(?:pero|but|aunque|although|though|sin embargo|however|except|excepto|salvo|oh yeah"
    r"|yeah right|si claro|gracias por nada|thanks for nothing|just perfect|if you like"
    r"|como no|que bien eh)\b"
)
# An order that has not come, however calmly put ("todavia no recibo nada", "still no sign of
# it"): a person reads it even among kind words. Matched on the tokens after SPELLINGS, one
# space apart.
_COME_ES = (
    r"(?:llega\w*|llego|recib\w*|entreg\w*|tra(?:e|en|jo|jeron|ido|igan)|mand\w*|envi\w*"
    r"|vin(?:o|ieron)|venido|aparec\w*|despach\w*)"
)
_COME_EN = (
    r"(?:arriv\w*|came|come|receiv\w*|got|gotten|get|deliver\w*|(?:show|turn)\w* up|here"
    r"|shipped)"
)
AWAITED = re.compile(
    "|".join(
        (  # "no me ha llegado", "ni siquiera me lo han traido", "sigo sin recibir"
            r"\b(?:no|nunca|ni|jamas|sin) (?:siquiera |todavia |aun )?"
            rf"(?:(?:me|nos|le|les|lo|la|los|las|se) ){{0,2}}(?:(?:ha|han|he|fue) )?(?:sido )?"
            rf"{_COME_ES}\b",
            # "hasn't arrived", "never showed up", "haven't even received it"
            rf"\b(?:not|never|hasn't|haven't|didn't|wasn't|isn't) (?:(?:even|yet|been) ){{0,2}}"
            rf"{_COME_EN}\b",
            # "sigo esperando", "llevo 15 dias esperando", "aun espero", "esperando mi pedido"
            r"\b(?:sigo|seguimos|sigue|llevo|llevamos|lleva|aun|todavia) (?:\w+ ){0,3}?esperando\b",
            r"\b(?:aun|todavia) (?:lo |la )?espero\b|\besperando (?:mis?|nuestr[oa]s?)\b",
            r"\b(?:cansad[oa]|harto|harta|canse) de esperar\b|\b(?:tengo|debo) que esperar\b",
            r"\b(?:still|been|keep|kept|tired of) (?:\w+ )?waiting\b|\bwaiting (?:on|for) my\b",
            r"\b(?:have|has) to (?:keep )?wait\b",
        )
    )
)
# Weaker signs of a late order (a promise, time gone by, "y nada"): a person reads them unless
# the reply is plainly kind ("dijeron 5 dias y llego en 2, genial").
_COUNT = r"(?:\d+|una?|a|one|two|three|four|dos|tres|cuatro|cinco|diez|quince|varios|several)"
OVERDUE = re.compile(
    "|".join(
        (  # "ya deberia haber llegado", "quedaron en traerlas", "was supposed to be here"
            r"\b(?:deberia|debia|debio|tenia que|iba a|quedaron en|dijeron que|prometieron) "
            r"(?:\w+ ){0,2}?(?:haber )?(?:llega\w*|llego|entreg\w*|traer\w*|venir|venido)",
            r"\b(?:supposed to|should have|was due) (?:be |been )?(?:arriv\w*|come|here|deliver)",
            # "pague y nada", "todavia nada", "still nothing", "nothing has arrived"
            r"\by nada\b(?! mas)|\b(?:todavia|aun) nada\b|\bnada (?:todavia|aun|de mi|del)\b",
            r"\b(?:and|still) nothing\b|\bnothing (?:yet|here|has arrived|arrived|came)\b",
            # "ya va una semana", "it's been 10 days"
            rf"\bya (?:va|van|paso|pasaron|llevo) (?:casi |mas de )?{_COUNT} (?:dias|semanas?|mes)",
            rf"\b(?:it's|its|been) (?:over )?{_COUNT} (?:days|weeks?|months?)\b",
            # "cambian la fecha de entrega", "ya paso la fecha", "rescheduled again"
            r"\b(?:cambian|cambiaron|movieron|postergaron) (?:\w+ ){0,2}?fecha\b",
            r"\bpaso la fecha\b|\b(?:rescheduled|pushed back)\b",
        )
    )
)
# Tokens after SPELLINGS (so "dont" arrives as "don't"); single words only.
NEGATORS = frozenset(
    {
        "no",
        "nunca",
        "ni",
        "tampoco",
        "sin",
        "not",
        "never",
        "don't",
        "didn't",
        "isn't",
        "wasnt",
        "wasn't",
        "haven't",
        "hasn't",
        "nada",
        "ningun",
        "ninguna",
        "nothing",
        "without",
    }
)
INTENSIFIERS = frozenset(
    {
        "muy",
        "super",
        "re",
        "demasiado",
        "bien",
        "tan",
        "tremendo",
        "so",
        "very",
        "really",
        "too",
        "extremely",
        "totally",
        "mega",
    }
)
NEGATIVE_EMOJI = "😡🤬👎💩😠😤😞😢😭🙄😒😫😩🤮💔😣😖"
POSITIVE_EMOJI = "👍😊🙏❤😍🥰👌⭐🙌😁😀😃😄🤩💯👏🥳💙💚♥😎"
NUMBER_WORDS = {
    "cero": 0,
    "uno": 1,
    "una": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
    "seis": 6,
    "siete": 7,
    "ocho": 8,
    "nueve": 9,
    "diez": 10,
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


def _entries(block: str) -> frozenset[str]:
    return frozenset(block.split())


# Multi-word entries of the lexicons (matched as phrases before single words).
PHRASES: dict[Label, tuple[str, ...]] = {
    Label.OBJECTION: (
        "no funciona",
        "no sirve",
        "no prende",
        "no enciende",
        "no enfria",
        "no calienta",
        "no carga",
        "no arranca",
        "no anda",
        "nadie me",
        "nadie contesta",
        "nadie responde",
        "nadie llamo",
        "sin respuesta",
        "no contestan",
        "no responden",
        "no me contestan",
        "no me responden",
        "mi plata",
        "mi dinero",
        "cobro doble",
        "cobro de mas",
        "se apaga",
        "se cae",
        "se traba",
        "no me gusto",
        "no me gusta",
        "nunca mas",
        "no cubre",
        "no reconocen",
        "no one",
        "nobody called",
        "nobody answered",
        "no answer",
        "no response",
        "money back",
        "charged twice",
        "stopped working",
        "doesn't work",
        "does not work",
        "not working",
        "won't turn on",
        "won't start",
        "don't like",
        "didn't like",
        "not happy",
        "never again",
        "nobody told",
        "no me avisaron",
        "nadie me aviso",
        "me cobraron",
        "vino sin",
        "llego sin",
        "came without",
        "le falta",
        "a medias",
        "dias despues",
        "days later",
        "semanas despues",
        "weeks later",
        "muy tarde",
        "too late",
        "no confio",
        "no confiamos",
        "don't trust",
        "alto el precio",
        "precio alto",
        "muy alta",
        "muy alto",
        "too expensive",
        "high price",
        "took forever",
        "taking forever",
        "taking so long",
        "ni rastro",
        "sin rastro",
        "sin noticias",
        "no sign",
        "no news",
        "no word",
        "no tracking",
    ),
    Label.POSITIVE: (
        "de maravilla",
        "funciona de lujo",
        "de lujo",
        "lo maximo",
        "la mejor",
        "el mejor",
        "muchas gracias",
        "mil gracias",
        "todo ok",
        "todo bien",
        "todo perfecto",
        "sin problemas",
        "sin quejas",
        "ninguna queja",
        "no tengo quejas",
        "10 de 10",
        "cinco estrellas",
        "thank you",
        "works great",
        "works fine",
        "works perfectly",
        "no complaints",
        "all good",
        "no problem",
        "no problems",
        "not bad",
        "no esta mal",
        "nada mal",
        "5 stars",
        "five stars",
        "muy bien",
        "super bien",
        "todo genial",
        "la rompe",
        "una maravilla",
        "una masa",
        "working perfectly",
        "like new",
        "como nuevo",
        "como nueva",
        "anda joya",
    ),
    Label.QUESTION: (
        "por que",
        "que hago",
        "se puede",
        "hasta que hora",
        "a que hora",
        "me pueden",
        "me podrian",
        "quiero saber",
        "can i",
        "could you",
        "can you",
        "do you",
        "does it",
        "is it",
        "is there",
        "are there",
        "will it",
        "should i",
        "need to know",
        "how do",
        "how long",
        "how much",
        "spare part",
        "de donde",
        "con quien",
        "a quien",
        "se equivocaron",
        "wrong number",
        "who is this",
        "quien es",
        "who dis",
        "que paso con",
        "que onda con",
        "que hay de",
        "what happened to",
        "what happened with",
    ),
    Label.NEUTRAL: (
        "de acuerdo",
        "ya veremos",
        "mas tarde",
        "todavia no la he usado",
        "aun no la uso",
        "got it",
        "not yet",
        "haven't used",
        "haven't opened",
        "will see",
        "al rato",
        "aun no",
        "todavia no",
        "no lo he",
        "no la he",
        "haven't tried",
        "ill ask",
        "i'll ask",
        "le pregunto",
        "se lo paso",
        "le paso",
        "no puedo",
    ),
}


# Set phrases of praise first: "llego sin problemas" is not the complaint "llego sin (el control)".
_PHRASE_ORDER = (Label.POSITIVE, Label.OBJECTION, Label.QUESTION, Label.NEUTRAL)


@dataclass(frozen=True)
class Lexicon:
    """Words per label; `extended` adds an owner's own, stored in the database."""

    words: Mapping[Label, frozenset[str]] = field(
        default_factory=lambda: {
            Label.OBJECTION: _entries(NEGATIVE),
            Label.POSITIVE: _entries(POSITIVE),
            Label.QUESTION: _entries(QUESTION),
            Label.NEUTRAL: _entries(NEUTRAL),
        }
    )
    phrases: Mapping[Label, tuple[str, ...]] = field(default_factory=lambda: dict(PHRASES))
    # (rank, label, phrase) by first word: a reply tries only the phrases its words begin.
    by_first_word: Mapping[str, tuple[tuple[int, Label, str], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[str, list[tuple[int, Label, str]]] = {}
        ranked = (
            (label, phrase) for label in _PHRASE_ORDER for phrase in self.phrases.get(label, ())
        )
        for rank, (label, phrase) in enumerate(ranked):
            index.setdefault(phrase.split(" ", 1)[0], []).append((rank, label, phrase))
        object.__setattr__(self, "by_first_word", {w: tuple(e) for w, e in index.items()})

    def extended(self, extra: Mapping[Label, Iterable[str]]) -> Lexicon:
        words = {label: set(entries) for label, entries in self.words.items()}
        phrases = {label: list(entries) for label, entries in self.phrases.items()}
        for label, entries in extra.items():
            single, several = split_entries(entries)
            words.setdefault(label, set()).update(single)
            phrases.setdefault(label, []).extend(several)
        return Lexicon(
            {label: frozenset(entries) for label, entries in words.items()},
            {label: tuple(entries) for label, entries in phrases.items()},
        )


DEFAULT_LEXICON = Lexicon()

# --- ratings -------------------------------------------------------------------------------

_NUMBER = r"(10|[0-9]|cero|uno|una|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|zero|one|two|three|four|five|six|seven|eight|nine|ten)"  # noqa: E501
_UNITS = (
    r"dias?|days?|horas?|hours?|semanas?|weeks?|meses|months?|anos|years?|veces|times|soles"
    r"|dolares|pesos|mins?|minutos|minutes|unidades|units|cuotas|pm|am"
)
_RATING_PATTERNS = (
    # "10/10", "8 de 10", "9 out of 10"
    (re.compile(rf"(?<![\d/.,]){_NUMBER}\s*(?:/|de|out of|sobre)\s*10\b"), 1),
    # "5 estrellas", "3 stars", "cinco estrellas", "2 estrellitas", "5⭐", "5-star"
    (re.compile(rf"(?<![\d/.,$]){_NUMBER}[\s-]*(?:(?:estrell(?:it)?as?|stars?)\b|[⭐★])"), 2),
    # "un 8", "le doy un 4", "a solid 9", "nota 7", "del 0 al 10 un 9", "I give it a 6"
    (
        re.compile(
            r"\b(?:un|una|a|nota|puntaje|score|rating|le doy|doy|give it|i give|solid)\s+"
            rf"(?:un\s+|a\s+)?{_NUMBER}\b(?!\s*(?:{_UNITS}|\$|%))"
        ),
        1,
    ),
    # the number alone, possibly with punctuation or emoji: "9", "10!", "3."
    (re.compile(rf"^\W*{_NUMBER}\W*$"), 1),
    # digits first, then words: "9 pero el tecnico llego tarde", "6. it does the job"
    (re.compile(rf"^(10|[0-9])(?:[.,!:;)]|\s+(?!(?:{_UNITS})\b)[a-z])"), 1),
)


def find_score(folded: str) -> int | None:
    """A 0-10 rating in the (folded) text, or None. Stars out of 5 count double, written or
    drawn ("⭐⭐⭐⭐", "★★★★☆": the hollow ones are the stars not given)."""
    for pattern, factor in _RATING_PATTERNS:
        match = pattern.search(folded)
        if match:
            token = match.group(1)
            value = int(token) if token.isdigit() else NUMBER_WORDS[token]
            value *= factor
            if factor == 2 and value > 10:
                continue
            if 0 <= value <= 10:
                return value
    drawn = folded.count("⭐") + folded.count("★")
    if drawn and drawn + folded.count("☆") <= 5:
        return drawn * 2
    return None


# --- the reading -----------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9ñ']+|[^\sa-z0-9ñ']")
_SQUEEZE = re.compile(r"([a-z])\1{2,}")


# Common SMS spellings, read as the word they stand for.
SPELLINGS = {
    "funsiona": "funciona",
    "funciono": "funciona",
    "funcina": "funciona",
    "sirbe": "sirve",
    "yega": "llega",
    "yego": "llego",
    "lleg": "llego",
    "nadien": "nadie",
    "aora": "ahora",
    "xq": "porque",
    "pq": "porque",
    "porq": "porque",
    "q": "que",
    "tb": "tambien",
    "tmb": "tambien",
    "x": "por",
    "porfa": "por favor",
    "xfa": "por favor",
    "grax": "gracias",
    "grasias": "gracias",
    "graxias": "gracias",
    "pls": "please",
    "plz": "please",
    "u": "you",
    "ur": "your",
    "r": "are",
    "thx": "thanks",
    "tnx": "thanks",
    "dont": "don't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "wont": "won't",
    "cant": "can't",
    "isnt": "isn't",
    "havent": "haven't",
    "hasnt": "hasn't",
    "wheres": "where is",
    "where's": "where is",
    "whats": "what is",
    "what's": "what is",
    "resibi": "recibi",
    "recivi": "recibi",
    "resivi": "recibi",
    "resibo": "recibo",
    "recivo": "recibo",
    "pkg": "package",
}


def split_entries(entries: Iterable[str]) -> tuple[list[str], list[str]]:
    """Words to look for, folded and spelled as replies are read: the single words, and the
    phrases of several (matched as a whole, in order)."""
    single: list[str] = []
    several: list[str] = []
    for entry in entries:
        folded = " ".join(words_of(fold(entry)))
        if folded:
            (several if " " in folded else single).append(folded)
    return single, several


def words_of(folded: str) -> list[str]:
    """The folded text's words, emoji and punctuation, common misspellings put right."""
    words = _WORD.findall(_SQUEEZE.sub(r"\1", folded))
    return [w for word in words for w in SPELLINGS.get(word, word).split()]


def _weighted_hits(tokens: list[str], lexicon: Lexicon) -> dict[Label, float]:
    """Weight per label: phrases first (their words are then used up), then single words;
    a negator within the three words before, in the same clause, flips objection and positive
    ("no demoraron nada, gracias": the thanks stand)."""
    text = " " + " ".join(tokens) + " "
    used = [False] * len(tokens)
    hits: dict[Label, float] = dict.fromkeys(Label, 0.0)
    candidates = sorted(e for word in set(tokens) for e in lexicon.by_first_word.get(word, ()))
    for _rank, label, phrase in candidates:
        needle = f" {phrase} "
        start = text.find(needle)
        while start != -1:
            first = text[:start].count(" ")
            count = phrase.count(" ") + 1
            if not any(used[first : first + count]):
                for i in range(first, first + count):
                    used[i] = True
                hits[label] += 1.5
            start = text.find(needle, start + 1)
    clause = 0  # where the clause of the token begins: a negator's reach ends at punctuation
    for i, token in enumerate(tokens):
        clause = i + 1 if token in _CLAUSE_ENDS else clause
        if used[i]:
            continue
        found = _label_of(token, lexicon)
        if found is None:
            continue
        weight = 1.0 + 0.5 * any(t in INTENSIFIERS for t in tokens[max(0, i - 2) : i])
        if any(t in NEGATORS for t in tokens[max(0, i - 3, clause) : i]):
            found = _FLIPPED.get(found, found)
        hits[found] += weight
    return hits


_FLIPPED = {Label.POSITIVE: Label.OBJECTION, Label.OBJECTION: Label.POSITIVE}
_CLAUSE_ENDS = frozenset(".,;:!?")


def _label_of(token: str, lexicon: Lexicon) -> Label | None:
    if token in NEGATIVE_EMOJI:
        return Label.OBJECTION
    if token in POSITIVE_EMOJI:
        return Label.POSITIVE
    for label in (Label.OBJECTION, Label.QUESTION, Label.POSITIVE, Label.NEUTRAL):
        if token in lexicon.words.get(label, ()):
            return label
    return None


def classify(text: str, lexicon: Lexicon = DEFAULT_LEXICON) -> Reading:
    """Read one reply."""
    consent = read_consent(text)
    if consent is not None and consent.keyword is not None:
        label = {Intent.OPT_OUT: Label.OPT_OUT, Intent.OPT_IN: Label.OPT_IN}.get(
            consent.intent, Label.HELP
        )
        return Reading(text, label, None, 0.99, False)
    if consent is not None:  # free text: "ya no me manden mensajes", "text me again"
        label = Label.OPT_OUT if consent.intent is Intent.OPT_OUT else Label.OPT_IN
        return Reading(text, label, None, 0.9, True)
    folded = fold(text)
    score = find_score(folded)
    tokens = words_of(folded)
    hits = _weighted_hits(tokens, lexicon)
    negative, positive = hits[Label.OBJECTION], hits[Label.POSITIVE]
    question = hits[Label.QUESTION] + 1.5 * text.count("?")
    squeezed = " ".join(tokens)
    if AWAITED.search(squeezed):
        negative += 1.5  # an order not come is a complaint, however kindly put
    if DOUBTFUL.search(squeezed) and (score is None or score <= 8 or negative or not positive):
        negative = max(negative, 1.0)  # kind words around a "but" or in sarcasm: a person reads
    lukewarm = any(f" {word} " in f" {squeezed} " for word in LUKEWARM)
    if score is not None:
        if score <= 6:
            return Reading(text, Label.OBJECTION, score, 0.95, True)
        if negative:
            return Reading(text, Label.OBJECTION, score, 0.8, True)
        if question >= 1.5:
            return Reading(text, Label.QUESTION, score, 0.8, True)
        label = Label.POSITIVE if score >= 9 or positive else Label.NEUTRAL
        return Reading(text, label, score, 0.9, lukewarm)
    if negative:
        confidence = min(0.95, 0.6 + 0.1 * negative)
        return Reading(text, Label.OBJECTION, None, confidence, True)
    if question:
        return Reading(text, Label.QUESTION, None, min(0.95, 0.6 + 0.1 * question), True)
    if positive:
        return Reading(text, Label.POSITIVE, None, min(0.95, 0.7 + 0.1 * positive), False)
    if OVERDUE.search(squeezed):
        return Reading(text, Label.OBJECTION, None, 0.6, True)
    if lukewarm:
        return Reading(text, Label.NEUTRAL, None, 0.6, True)
    if hits[Label.NEUTRAL]:
        return Reading(text, Label.NEUTRAL, None, 0.7, False)
    return Reading(text, Label.NEUTRAL, None, 0.3, True)  # nothing recognised: a person reads it
