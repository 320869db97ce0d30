"""Lesson 11 speed on this machine: a photo's 10 nearest words among 100k, and a word query over 10,000 images.

    python -m benchmarks.devise_speed [--repeats 50]      # from the repository root

Rows, timed in the same interleaved rounds:
  words, full matrix   the plain way: all 100k cosines in one (1, 50) x (50, 100k) product, then top-k (the baseline)
  words, searcher      the tab's DeviseSearcher.nearest_words: chunked exact search (dl_core/devise/search.py), with
                       the head's seen-class penalty as the tab applies it
  images, full matrix  one query's cosines with 10,000 image embeddings, then top-k (the baseline of the second table)
  images, collection   the tab's ImageCollection.search over the same 10,000
  query parse          'sail + boat - water' into a unit vector (the words -> images path's only other work)
  backbone             the frozen Lite0 on one photo (what "after the backbone" leaves out)
The 10,000 images are CIFAR-10's test set embedded by the bundled head where the data root has it (features cached
under data/cache/ by the first run), else 10,000 random unit vectors: search time does not depend on which.
Targets (issue 22, 2 CPU cores): image -> 10 words over 100k ≤ 60 ms after the backbone; word query over 10,000
images ≤ 30 ms. Needs the bundled weights/devise.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from benchmarks.timing import interleaved_median_ms, print_latency_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed rounds (default: %(default)s)")
    args = parser.parse_args()

    from demos import devise as tab
    from demos.common import bundled_photos
    from dl_core.devise.infer import ImageCollection
    from dl_core.images import load_rgb

    torch.set_num_threads(2)
    searcher = tab.MODEL.get()
    photo = load_rgb(bundled_photos()[0]).image
    with torch.inference_mode():
        point = searcher.embed(searcher.encode([photo])[0])[0]
    collection = tab.builtin_collection()
    source = "CIFAR-10 test, embedded by the bundled head"
    if collection is None:
        source = "random unit vectors (no CIFAR-10 in the data root)"
        embeddings = F.normalize(torch.randn(10_000, searcher.words.dim, generator=torch.Generator().manual_seed(0)), dim=1)
        collection = ImageCollection(embeddings, [], [""] * 10_000)
    query = searcher.query("sail + boat")
    words, images = searcher.words.vectors, collection.embeddings

    def full_matrix(keys, q, k):
        with torch.inference_mode():
            (keys @ q).topk(k)

    fns = {
        "words full": lambda: full_matrix(words, point, tab.N_WORDS),
        "words searcher": lambda: searcher.nearest_words(point, tab.N_WORDS, penalty=searcher.head.config.seen_penalty),
        "images full": lambda: full_matrix(images, query, tab.N_IMAGES),
        "images collection": lambda: collection.search(query, tab.N_IMAGES),
        "query parse": lambda: searcher.query("sail + boat - water"),
        "backbone": lambda: searcher.encode([photo]),
    }
    times = interleaved_median_ms(fns, repeats=args.repeats)
    print(f"medians of {args.repeats} interleaved rounds, 2 threads; {len(searcher.words):,} words, "
          f"{len(collection):,} images ({source})\n")
    print_latency_table([
        (f"{tab.N_WORDS} nearest of {len(searcher.words) // 1000}k words: one full product + top-k (baseline)",
         times["words full"], None),
        (f"{tab.N_WORDS} nearest words: the tab's chunked exact search", times["words searcher"], 60),
        ("the photo through the frozen Lite0 (not part of the target)", times["backbone"], None),
    ], times["words full"], "full")
    print()
    print_latency_table([
        (f"{tab.N_IMAGES} nearest of {len(collection):,} images: one full product + top-k (baseline)",
         times["images full"], None),
        (f"{tab.N_IMAGES} nearest images: ImageCollection.search", times["images collection"], 30),
        ("'sail + boat - water' parsed into a unit vector", times["query parse"], None),
    ], times["images full"], "full")


if __name__ == "__main__":
    main()
