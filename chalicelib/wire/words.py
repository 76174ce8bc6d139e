"""Vocabulary for human-readable session ids (``faithful-shepherd-427``).

Lower-case ASCII words only, no hyphens, no duplicates (a test enforces all three).
Words are chosen to read well in any pairing; BLOCKED_PAIRS and BLOCKED_WORDS catch
the combinations that do not.
"""

ADJECTIVES = (
    "abiding", "abundant", "anointed", "ardent", "awake", "beloved", "blessed",
    "bold", "bright", "calm", "candid", "caring", "chosen", "clear", "comforting",
    "compassionate", "constant", "courageous", "devoted", "diligent", "divine",
    "earnest", "enduring", "eternal", "exalted", "fair", "faithful", "fervent",
    "firm", "forgiving", "fruitful", "generous", "gentle", "genuine", "giving",
    "glad", "glorious", "golden", "good", "gracious", "grateful", "guiding",
    "hallowed", "happy", "harmonious", "healing", "heavenly", "helpful", "holy",
    "honest", "hopeful", "humble", "joyful", "joyous", "just", "kind", "kindly",
    "lasting", "lively", "living", "loving", "loyal", "meek", "merciful", "mighty",
    "mindful", "modest", "noble", "patient", "peaceful", "pious", "prayerful",
    "precious", "pure", "quiet", "radiant", "ready", "redeemed", "rejoicing",
    "renewed", "restful", "restored", "reverent", "righteous", "risen", "sacred",
    "serene", "sincere", "singing", "splendid", "steadfast", "still", "strong",
    "sure", "tender", "thankful", "tranquil", "true", "trusting", "trusty",
    "upright", "valiant", "victorious", "vigilant", "virtuous", "warm",
    "watchful", "wise", "wondrous", "worthy", "zealous",
)

NOUNS = (
    "altar", "angel", "anthem", "ark", "banner", "beacon", "bell", "blessing",
    "branch", "bread", "bridge", "candle", "cedar", "chalice", "chapel", "choir",
    "cloud", "communion", "cornerstone", "covenant", "cross", "crown", "dawn",
    "disciple", "dove", "eagle", "fig", "fisher", "flame", "flock", "fountain",
    "garden", "gate", "gift", "glory", "gospel", "grace", "grape", "harp",
    "harvest", "haven", "herald", "hill", "hope", "hymn", "isaiah", "jordan",
    "journey", "jubilee", "kingdom", "lamb", "lamp", "lantern", "light", "lily",
    "lion", "manna", "meadow", "mercy", "messenger", "minister", "mountain",
    "myrrh", "nazareth", "oak", "oasis", "olive", "palm", "parable", "pasture",
    "path", "pearl", "pilgrim", "prayer", "promise", "prophet", "psalm", "rainbow",
    "refuge", "river", "rock", "rose", "sabbath", "sanctuary", "scroll", "seed",
    "servant", "shelter", "shepherd", "shield", "shore", "sparrow", "spirit",
    "spring", "staff", "star", "steward", "stone", "story", "sunrise", "tabernacle",
    "temple", "testament", "tower", "trumpet", "truth", "vessel", "vine",
    "vineyard", "voice", "water", "well", "wheat", "wing", "witness", "word",
    "zion",
)

# Words never used, even if a future edit adds them to the lists above.
BLOCKED_WORDS = frozenset({"dead", "hell", "devil", "satan", "damned", "kill"})

# Pairings that read badly ("still-water" is fine, but some are not).
BLOCKED_PAIRS = frozenset(
    {
        ("risen", "lamb"),
        ("happy", "cross"),
        ("glad", "cross"),
        ("singing", "cross"),
        ("lively", "cross"),
    }
)


def is_blocked(adjective: str, noun: str) -> bool:
    return (
        adjective in BLOCKED_WORDS
        or noun in BLOCKED_WORDS
        or (adjective, noun) in BLOCKED_PAIRS
    )
