"""Files: atomic writes and locks (``files``), tensors read without trust (``tensors``), the run folder
and its staleness records (``run_folder``), activation files (``activations``), and the paper's ratings
downloaded once (``download``)."""
