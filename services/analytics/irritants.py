"""irritants: topics of customers' verbatims (negative or handed-off contacts, already redacted), each with a
readable label, its size, its trend against the previous window and a few example verbatims.

Method: words are lowercased, accents folded, plurals stripped, stop words (French, English and
customer-service filler) dropped, and a short FR->EN glossary of contact-centre words maps "livraison"
and "delivery" to the same term so that one irritant is one topic in both languages. Word TF-IDF plus
character 3-5-gram TF-IDF (for typos), reduced by TruncatedSVD, clustered by KMeans with the number of
topics of best silhouette in 2..max_topics, then topics with alike centres merged (silhouette over-splits
text). Verbatims far from every centre (noise) belong to no topic, and previous-window verbatims count for
the nearest topic only if close enough. Words outside the glossary do not bridge languages: an irritant
worded only in such words may come out as one topic per language.

A topic's size counts contacts (conversations), not messages: each contact's verbatims are read as one
document, so a 300-message conversation is one point, and its example is its message closest to the topic.
Channel mechanics are no irritant: a message that is only a queue command (STOP, annuler, CALLBACK,
rappel...) is left out here; requests for a person are left out by the store from the classifier's flag.
A topic whose words give no label is labelled with its most representative verbatim, shortened.
"""

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from relais.common.language import FRENCH_STOP_WORDS, SUPPORTED_LANGUAGES, fold, guess_languages
from relais.common.queue_words import CALLBACK_COMMANDS, FAREWELLS, FILLER, LEAVE_COMMANDS, QUEUE_WORDS


@dataclass(frozen=True)
class Irritant:
    label: str
    size: int
    previous_size: int
    trend: float | None
    examples: tuple[str, ...]
    terms: tuple[str, ...]
    languages: tuple[str, ...]


# Redaction placeholders ("[CARD]", "<EMAIL>", "{{IBAN}}") carry no topic: removed before anything else.
PLACEHOLDER = re.compile(r"[\[<{]+\s*[A-Za-z][A-Za-z0-9_ -]*\s*[\]>}]+")
FILLER_WORDS = frozenset(
    """
hello hi hey thanks thank thx pls plz please dear regards sir madam ok okay yes yeah still just really
don doesn didn isn wasn aren can cannot won ve ll im ive dont doesnt didnt cant wont got get getting help urgent
""".split()
)
STOP_WORDS = FRENCH_STOP_WORDS | FILLER_WORDS | frozenset(ENGLISH_STOP_WORDS)
# Common contact-centre words, French (folded, singular) -> English, so both languages share a term.
GLOSSARY = {
    "livraison": "delivery",
    "livre": "delivered",
    "livree": "delivered",
    "colis": "parcel",
    "package": "parcel",
    "commande": "order",
    "retard": "late",
    "tard": "late",
    "delay": "late",
    "delayed": "late",
    "carte": "card",
    "bancaire": "bank",
    "banque": "bank",
    "bloquee": "blocked",
    "bloque": "blocked",
    "refusee": "declined",
    "refuse": "declined",
    "paiement": "payment",
    "remboursement": "refund",
    "rembourse": "refunded",
    "recu": "received",
    "argent": "money",
    "virement": "transfer",
    "prelevement": "debit",
    "facture": "invoice",
    "abonnement": "subscription",
    "frais": "fee",
    "compte": "account",
    "connexion": "login",
    "connecter": "login",
    "identifiant": "username",
    "motdepasse": "password",
    "application": "app",
    "appli": "app",
    "site": "website",
    "erreur": "error",
    "conseiller": "agent",
    "advisor": "agent",
    "attente": "wait",
    "attendre": "wait",
    "waiting": "wait",
    "telephone": "phone",
    "appel": "call",
    "reponse": "answer",
    "repondu": "answered",
    "impoli": "rude",
    "injoignable": "unreachable",
    "client": "customer",
}
# A message made only of the queue's vocabulary (relais.common.queue_words: the answers to "Reply STOP to leave the
# queue, or CALLBACK...") and stop words is a command, not something the customer complains about. Words naming the
# queue or the request ("file", "wait", "demande") and filler come with a command and are none alone.
QUEUE_COMMANDS = frozenset(
    word
    for phrase in LEAVE_COMMANDS | CALLBACK_COMMANDS | FAREWELLS
    for word in re.findall(r"[^\W\d_]+", phrase)
    if word not in STOP_WORDS and word not in QUEUE_WORDS
)
QUEUE_AND_FILLER = (
    QUEUE_COMMANDS | QUEUE_WORDS | {word for phrase in FILLER for word in re.findall(r"[^\W\d_]+", phrase)}
)
LABEL_CHARACTERS = 48  # a label taken from a verbatim is cut at a word boundary around this length
MIN_SIMILARITY = 0.2  # cosine to a topic centre below which a verbatim is noise (0.3 dropped 10 % of themes)
SVD_COMPONENTS = 100  # LSA dimensions; SVD is skipped on small windows
MERGE_SIMILARITY = 0.1  # cosine of two centres: 0.12-0.45 within an irritant, <= 0.09 across
CHAR_WEIGHT = 0.3  # words decide the topic; characters only pull typos and inflections together


def _tokens(text: str) -> list[tuple[str, str]]:
    """(term, surface word) pairs: term for the features, surface (with accents) for readable labels."""
    text = PLACEHOLDER.sub(" ", text).lower().replace("mot de passe", "motdepasse")
    pairs = []
    for surface in re.findall(r"[^\W\d_]{2,}", text):
        word = fold(surface)
        if word in STOP_WORDS:
            continue
        singular = word[:-1] if len(word) > 3 and word[-1] in "sx" and not word.endswith("ss") else word
        term = GLOSSARY.get(word) or GLOSSARY.get(singular) or singular
        if term not in STOP_WORDS:
            pairs.append((term, "mot de passe" if word == "motdepasse" else surface))
    return pairs


def is_queue_command(text: str) -> bool:
    """True for a message that is only a queue command ("STOP", "annuler svp", "RAPPEL", "quit the queue")."""
    text = re.sub(r"\bcall[\s-]+(?:me\s+)?back\b", "callback", PLACEHOLDER.sub(" ", text).lower())
    words = [fold(w) for w in re.findall(r"[^\W\d_]+", text)]
    meaningful = [w for w in words if w not in STOP_WORDS]
    return (
        bool(meaningful)
        and any(w in QUEUE_COMMANDS for w in meaningful)
        and all(w in QUEUE_AND_FILLER for w in meaningful)
    )


def short_label(text: str, limit: int = LABEL_CHARACTERS) -> str:
    """A verbatim as a label: placeholders out, whitespace collapsed, cut at a word boundary with an ellipsis."""
    clean = " ".join(PLACEHOLDER.sub(" ", text).split()) or " ".join(text.split())
    if len(clean) <= limit:
        return clean
    cut = clean[: limit + 1].rsplit(" ", 1)[0] if " " in clean[: limit + 1] else clean[:limit]
    return cut.rstrip(" ,;:.-–—") + "…"


# One BLAS thread: on a busy 2-core host, threaded SVD and KMeans ran 20x slower (4.5 s vs 0.2 s).
@threadpool_limits.wrap(limits=1)
def find_irritants(
    current: Sequence[str],
    previous: Sequence[str] = (),
    *,
    contacts: Sequence[str] | None = None,
    previous_contacts: Sequence[str] | None = None,
    max_topics: int = 8,
    min_size: int = 3,
    examples: int = 3,
    seed: int = 0,
) -> list[Irritant]:
    """Topics of the `current` verbatims; `contacts[i]` is the conversation of `current[i]` (default: each
    verbatim its own contact), and sizes count contacts. `previous` (with `previous_contacts`) gives the trend."""
    groups = _by_contact(current, contacts)
    if len(groups) < max(min_size, 1):
        return []
    docs = [" ".join(term for turn in turns for term, _ in turn[1]) for turns in groups]
    surfaces = [" ".join(fold(s) for turn in turns for _, s in turn[1]) for turns in groups]
    pools_of = [[pair for turn in turns for pair in turn[1]] for turns in groups]
    languages = [
        guess.language if guess.sure and guess.language in SUPPORTED_LANGUAGES else None
        for guess in guess_languages(
            [(PLACEHOLDER.sub(" ", " ".join(current[i] for i, _ in turns)), None, None) for turns in groups]
        )
    ]
    min_df = 2 if len(docs) >= 50 else 1  # singletons on a large corpus are mostly typos, left to char n-grams
    words = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True, min_df=min_df)
    chars = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=min_df, max_features=20000
    )
    word_matrix = words.fit_transform(docs)
    features = sparse.hstack([word_matrix, CHAR_WEIGHT * chars.fit_transform(surfaces)]).tocsr()
    reducer = None
    if min(features.shape) > 100:
        reducer = TruncatedSVD(n_components=min(SVD_COMPONENTS, len(docs) // 2), random_state=seed).fit(features)

    def project(term_docs: list[str], surface_docs: list[str]) -> np.ndarray:
        found = sparse.hstack([words.transform(term_docs), CHAR_WEIGHT * chars.transform(surface_docs)]).tocsr()
        return normalize(reducer.transform(found) if reducer else found.toarray())

    points = normalize(reducer.transform(features) if reducer else features.toarray())
    distinct = len(np.unique(points.round(6), axis=0))
    model = (
        _best_kmeans(points, min(max_topics, distinct - 1), seed)
        if distinct > 2
        else KMeans(n_clusters=1, n_init=1, random_state=seed).fit(points)
    )
    # Silhouette rises with k on sparse text (measured: 0.06 at k=2 to 0.15 at k=12 on the test corpus), so
    # KMeans over-splits an irritant ("card blocked" / "card declined"): merge topics whose centres are alike.
    topics = (
        np.arange(1)
        if len(model.cluster_centers_) == 1
        else AgglomerativeClustering(
            n_clusters=None,
            metric="cosine",
            linkage="average",
            distance_threshold=1 - MERGE_SIMILARITY,
        ).fit_predict(model.cluster_centers_)
    )
    merged = topics[model.labels_]
    centres = normalize(np.vstack([points[merged == t].mean(axis=0) for t in range(merged.max() + 1)]))
    similarity = points @ centres.T
    assigned = np.where(similarity.max(axis=1) >= MIN_SIMILARITY, similarity.argmax(axis=1), -1)

    previous_counts: Counter[int] = Counter()  # topic -> previous contacts
    previous_groups = _by_contact(previous, previous_contacts)
    if previous_groups:
        previous_points = project(
            [" ".join(t for turn in turns for t, _ in turn[1]) for turns in previous_groups],
            [" ".join(fold(s) for turn in turns for _, s in turn[1]) for turns in previous_groups],
        )
        previous_similarity = previous_points @ centres.T
        close = previous_similarity.max(axis=1) >= MIN_SIMILARITY
        previous_counts.update(previous_similarity.argmax(axis=1)[close].tolist())

    def representative(contact: int, topic: int) -> str:
        """The contact's message closest to the topic (its only one, usually)."""
        turns = groups[contact]
        if len(turns) == 1:
            return current[turns[0][0]]
        turn_points = project(
            [" ".join(t for t, _ in pairs) for _, pairs in turns],
            [" ".join(fold(s) for _, s in pairs) for _, pairs in turns],
        )
        return current[turns[int(np.argmax(turn_points @ centres[topic]))][0]]

    vocabulary = words.get_feature_names_out()
    corpus_mean = np.asarray(word_matrix.mean(axis=0)).ravel()
    irritants = []
    for topic in range(len(centres)):
        members = np.flatnonzero(assigned == topic)
        if len(members) < min_size:
            continue
        # Distinctive terms: weight in the topic above their weight in the whole window.
        topic_mean = np.asarray(word_matrix[members].mean(axis=0)).ravel()
        lift = topic_mean - corpus_mean  # all zero when there is one topic: then the most frequent terms
        order = [j for j in np.lexsort((-topic_mean, -lift))[:6] if topic_mean[j] > 0 and lift[j] >= 0]
        terms = tuple(vocabulary[j] for j in order)
        member_languages = Counter(languages[i] for i in members)
        main_language = max(member_languages, key=lambda lang: (lang is not None, member_languages[lang]))
        strong = [t for t, j in zip(terms, order) if lift[j] >= 0.35 * lift[order[0]]]
        # Surface words from the topic's main language first, so a label reads in one language where it can.
        pools = ([pools_of[i] for i in members if languages[i] == main_language], [pools_of[i] for i in members])
        label = " · ".join(_surface(term, pools) for term in (strong[:4] if len(strong) >= 2 else terms[:2]))
        closest = members[np.argsort(-similarity[members, topic], kind="stable")]
        example_texts: list[str] = []
        for i in closest:
            if len(example_texts) >= max(examples, 1):
                break
            if (text := representative(i, topic)) not in example_texts:
                example_texts.append(text)
        if not label.strip(" ·"):  # no distinctive word (e.g. all below min_df): the most representative verbatim
            label = short_label(example_texts[0])
        before = previous_counts[topic]
        irritants.append(
            Irritant(
                label=label,
                size=len(members),
                previous_size=before,
                trend=(len(members) - before) / before if before else None,
                examples=tuple(example_texts[:examples]),
                terms=terms,
                languages=tuple(sorted(lang for lang in member_languages if lang)),
            )
        )
    return sorted(irritants, key=lambda irritant: (-irritant.size, irritant.label))


def _by_contact(texts: Sequence[str], contacts: Sequence[str] | None) -> list[list[tuple[int, list[tuple[str, str]]]]]:
    """Per contact (first-seen order), its usable verbatims as (index in `texts`, tokens): queue commands and
    texts with no word left (placeholders, greetings) are dropped, and so are contacts left with nothing."""
    if contacts is not None and len(contacts) != len(texts):
        raise ValueError(f"{len(contacts)} contacts for {len(texts)} verbatims")
    groups: dict[object, list[tuple[int, list[tuple[str, str]]]]] = {}
    for i, text in enumerate(texts):
        if is_queue_command(text) or not (pairs := _tokens(text)):
            continue
        groups.setdefault(i if contacts is None else contacts[i], []).append((i, pairs))
    return list(groups.values())


def _surface(term: str, pools: Sequence[list[list[tuple[str, str]]]]) -> str:
    """The commonest word written for a term, from the first pool of tokenised verbatims that has one."""
    for pool in pools:
        if counts := Counter(surface for pairs in pool for t, surface in pairs if t == term):
            return counts.most_common(1)[0][0]
    return term


def _best_kmeans(points: np.ndarray, max_k: int, seed: int) -> KMeans:
    """KMeans with the number of topics that gives the best silhouette (on a sample: it is quadratic)."""
    best, best_score = None, -2.0
    for k in range(2, max(max_k, 2) + 1):
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(points)
        if len(set(model.labels_)) < 2:
            continue
        score = silhouette_score(points, model.labels_, sample_size=min(len(points), 2000), random_state=seed)
        if score > best_score:
            best, best_score = model, score
    return best or KMeans(n_clusters=1, n_init=1, random_state=seed).fit(points)
