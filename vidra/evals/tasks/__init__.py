"""One loader per benchmark format; each reads its files into a `vidra.evals.LoadResult`."""
