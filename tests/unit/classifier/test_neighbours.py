"""The nearest-neighbour member's vote (relais.classifier.model.neighbours): each class scored by its two closest
training examples, the same for a message alone or in a batch, whichever way the batch is computed."""

import numpy as np

from relais.classifier.model.neighbours import FEW_ROWS, _EmbeddingKNN, top_two_means


def test_the_neighbours_vote_takes_each_class_two_closest_examples_ties_and_lone_examples_included():
    similarity = np.array(
        [
            [0.9, 0.1, 0.5, 0.7, 0.7, 0.2, 0.3],
            [0.2, 0.8, 0.8, 0.1, 0.0, 0.6, -0.4],
        ],
        dtype=np.float32,
    )
    starts, sizes = np.array([0, 3, 5, 6]), np.array([3, 2, 1, 1])  # the last slice runs to the end
    expected = [[np.mean(sorted(row[s : s + n])[-2:]) for s, n in zip(starts, sizes)] for row in similarity.tolist()]
    assert np.allclose(top_two_means(similarity, starts, sizes), expected)
    assert top_two_means(similarity, starts, sizes)[1, 0] == np.float32(0.8), "the largest twice is also the second"


def test_a_message_reads_the_same_alone_and_in_a_batch_read_class_by_class():
    rng = np.random.RandomState(1)
    y = rng.randint(20, size=500)
    vectors = rng.randn(500, 32).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    knn = _EmbeddingKNN(vectors, y, 22)  # two classes without examples
    queries = np.concatenate([vectors[:5], rng.randn(35, 32).astype(np.float32)])
    assert len(queries) > FEW_ROWS
    batch = knn.vote(queries)
    assert np.array_equal(batch, np.vstack([knn.vote(queries[i : i + 1]) for i in range(len(queries))]))
    assert (batch[:5].argmax(1) == y[:5]).all(), "a training text votes for its own class"
