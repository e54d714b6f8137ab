"""The reading side of a run: worker threads and what they leave behind."""

import threading

import torch

from napari_colorize.inference.reading import Workers


def test_workers_run_single_threaded_and_leave_other_threads_their_torch_threads():
    """A pool's threads use one torch thread each; threads started later keep the default.

    ``torch.set_num_threads`` in a worker also sets the default of threads not
    yet started: napari's next worker then ran a network on one core (4096²
    took 11.2 s instead of 6.5 s on two cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    workers = Workers(2)
    try:
        in_workers = []
        workers.map(lambda _: in_workers.append(torch.get_num_threads()), range(4))
        in_fresh_thread = []
        thread = threading.Thread(target=lambda: in_fresh_thread.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert in_workers == [1, 1, 1, 1]
        assert in_fresh_thread == [2]
        assert torch.get_num_threads() == 2
    finally:
        workers.close()
        torch.set_num_threads(before)
