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
"""

import re
import unicodedata
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
FRENCH_STOP_WORDS = frozenset("""
a ai aie aies ait al alors as au aucun aussi autre aux avais avait avant avec avez avoir avons ayant
bah beaucoup bien bon bonjour bonne bonsoir c ca car ce cela celle celui ces cet cette chez ci comme comment
d dans de des deja depuis dois doit donc du elle elles en encore est et etaient etais etait ete etes etre eu
fait faire fais faut fois ici il ils j je jour jours juste l la le les leur leurs lui m ma mais me meme merci
mes moi mon n ne ni non nos notre nous on ont ou oui par parce pas peu peut peux plus pour pourquoi pouvez
qu quand que quel quelle quelles quels qui rien s sa salut sans se sera ses si sil son sont suis sur svp
t ta te tes toi ton toujours tous tout tres tu un une va vais veux voila vos votre vous vu y
cordialement madame monsieur slt stp urgent aide aidez
""".split())
FILLER_WORDS = frozenset("""
hello hi hey thanks thank thx pls plz please dear regards sir madam ok okay yes yeah still just really
don doesn didn isn wasn aren can cannot won ve ll im ive dont doesnt didnt cant wont got get getting help urgent
""".split())
STOP_WORDS = FRENCH_STOP_WORDS | FILLER_WORDS | frozenset(ENGLISH_STOP_WORDS)
# Common contact-centre words, French (folded, singular) -> English, so both languages share a term.
GLOSSARY = {
    "livraison": "delivery", "livre": "delivered", "livree": "delivered", "colis": "parcel", "package": "parcel",
    "commande": "order", "retard": "late", "tard": "late", "delay": "late", "delayed": "late",
    "carte": "card", "bancaire": "bank", "banque": "bank", "bloquee": "blocked", "bloque": "blocked",
    "refusee": "declined", "refuse": "declined", "paiement": "payment", "remboursement": "refund",
    "rembourse": "refunded", "recu": "received", "argent": "money", "virement": "transfer",
    "prelevement": "debit", "facture": "invoice", "abonnement": "subscription", "frais": "fee",
    "compte": "account", "connexion": "login", "connecter": "login", "identifiant": "username",
    "motdepasse": "password", "application": "app", "appli": "app", "site": "website", "erreur": "error",
    "conseiller": "agent", "advisor": "agent", "attente": "wait", "attendre": "wait", "waiting": "wait",
    "telephone": "phone", "appel": "call", "reponse": "answer", "repondu": "answered", "impoli": "rude",
    "injoignable": "unreachable", "client": "customer",
}
MIN_SIMILARITY = 0.2  # cosine to a topic centre below which a verbatim is noise (0.3 dropped 10 % of themes)
SVD_COMPONENTS = 100  # LSA dimensions; SVD is skipped on small windows
MERGE_SIMILARITY = 0.1  # cosine of two centres: 0.12-0.45 within an irritant, <= 0.09 across
CHAR_WEIGHT = 0.3  # words decide the topic; characters only pull typos and inflections together


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _tokens(text: str) -> list[tuple[str, str]]:
    """(term, surface word) pairs: term for the features, surface (with accents) for readable labels."""
    text = PLACEHOLDER.sub(" ", text).lower().replace("mot de passe", "motdepasse")
    pairs = []
    for surface in re.findall(r"[^\W\d_]{2,}", text):
        word = _fold(surface)
        if word in STOP_WORDS:
            continue
        singular = word[:-1] if len(word) > 3 and word[-1] in "sx" and not word.endswith("ss") else word
        term = GLOSSARY.get(word) or GLOSSARY.get(singular) or singular
        if term not in STOP_WORDS:
            pairs.append((term, "mot de passe" if word == "motdepasse" else surface))
    return pairs


def _language(text: str) -> str | None:
    words = re.findall(r"[^\W\d_]+", PLACEHOLDER.sub(" ", text).lower())
    french = sum(w in FRENCH_STOP_WORDS for w in words) + 2 * bool(re.search(r"[éèêàçù]", text.lower()))
    english = sum(w in ENGLISH_STOP_WORDS or w in FILLER_WORDS for w in words)
    return "fr" if french > english else "en" if english > french else None


# One BLAS thread: on a busy 2-core host, threaded SVD and KMeans ran 20x slower (4.5 s vs 0.2 s).
@threadpool_limits.wrap(limits=1)
def find_irritants(current: Sequence[str], previous: Sequence[str] = (), *, max_topics: int = 8,
                   min_size: int = 3, examples: int = 3, seed: int = 0) -> list[Irritant]:
    tokens = [_tokens(text) for text in current]
    kept = [i for i, pairs in enumerate(tokens) if pairs]  # placeholder- or filler-only texts join no topic
    if len(kept) < max(min_size, 1):
        return []
    docs = [" ".join(term for term, _ in tokens[i]) for i in kept]
    languages = [_language(current[i]) for i in kept]
    min_df = 2 if len(docs) >= 50 else 1  # singletons on a large corpus are mostly typos, left to char n-grams
    words = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True, min_df=min_df)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=min_df,
                            max_features=20000)
    surfaces = [" ".join(_fold(s) for _, s in tokens[i]) for i in kept]
    word_matrix = words.fit_transform(docs)
    features = sparse.hstack([word_matrix, CHAR_WEIGHT * chars.fit_transform(surfaces)]).tocsr()
    reducer = None
    if min(features.shape) > 100:
        reducer = TruncatedSVD(n_components=min(SVD_COMPONENTS, len(docs) // 2), random_state=seed).fit(features)
    points = normalize(reducer.transform(features) if reducer else features.toarray())

    distinct = len(np.unique(points.round(6), axis=0))
    model = _best_kmeans(points, min(max_topics, distinct - 1), seed) if distinct > 2 else \
        KMeans(n_clusters=1, n_init=1, random_state=seed).fit(points)
    # Silhouette rises with k on sparse text (measured: 0.06 at k=2 to 0.15 at k=12 on the test corpus), so
    # KMeans over-splits an irritant ("card blocked" / "card declined"): merge topics whose centres are alike.
    topics = np.arange(1) if len(model.cluster_centers_) == 1 else AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=1 - MERGE_SIMILARITY,
    ).fit_predict(model.cluster_centers_)
    merged = topics[model.labels_]
    centres = normalize(np.vstack([points[merged == t].mean(axis=0) for t in range(merged.max() + 1)]))
    similarity = points @ centres.T
    assigned = np.where(similarity.max(axis=1) >= MIN_SIMILARITY, similarity.argmax(axis=1), -1)

    previous_counts = Counter()
    previous_tokens = [_tokens(text) for text in previous]
    previous_kept = [i for i, pairs in enumerate(previous_tokens) if pairs]
    if previous_kept:
        previous_features = sparse.hstack([
            words.transform([" ".join(t for t, _ in previous_tokens[i]) for i in previous_kept]),
            CHAR_WEIGHT * chars.transform([" ".join(_fold(s) for _, s in previous_tokens[i]) for i in previous_kept]),
        ]).tocsr()
        previous_points = normalize(reducer.transform(previous_features) if reducer else previous_features.toarray())
        previous_similarity = previous_points @ centres.T
        close = previous_similarity.max(axis=1) >= MIN_SIMILARITY
        previous_counts.update(previous_similarity.argmax(axis=1)[close].tolist())

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
        pools = ([tokens[kept[i]] for i in members if languages[i] == main_language], [tokens[kept[i]] for i in members])
        label = " · ".join(_surface(term, pools) for term in (strong[:4] if len(strong) >= 2 else terms[:2]))
        closest = members[np.argsort(-similarity[members, topic], kind="stable")]
        example_texts = tuple(dict.fromkeys(current[kept[i]] for i in closest))[:examples]
        before = previous_counts[topic]
        irritants.append(Irritant(label=label, size=len(members), previous_size=before,
                                  trend=(len(members) - before) / before if before else None,
                                  examples=example_texts, terms=terms,
                                  languages=tuple(sorted(lang for lang in member_languages if lang))))
    return sorted(irritants, key=lambda irritant: (-irritant.size, irritant.label))


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
