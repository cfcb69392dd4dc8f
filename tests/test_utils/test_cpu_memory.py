"""keep_freed_memory: a large tensor reuses the pages of earlier ones instead of faulting in new
ones (counted as minor page faults in a fresh process), and the environment switch turns it off."""
import os
import subprocess
import sys
import textwrap

import pytest

from retinexmamba_mm.utils import keep_freed_memory

SCRIPT = textwrap.dedent('''
    import resource, torch
    from retinexmamba_mm.utils import keep_freed_memory
    print(keep_freed_memory())
    n = 64 * 2**20 // 4                      # 64 MiB: above glibc's largest mmap threshold
    for _ in range(4):                       # allocated, touched, freed (the heap settles
        torch.ones(n)                        # within two or three of them)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        torch.ones(n)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
''')


def faults_of_four_more_tensors(switch):
    env = dict(os.environ, RETINEXMAMBA_KEEP_FREED_MEMORY=switch, OMP_NUM_THREADS='1')
    lines = subprocess.run([sys.executable, '-c', SCRIPT], env=env, capture_output=True,
                           text=True, check=True).stdout.splitlines()  # after any log lines
    return lines[-2] == 'True', int(lines[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='keep_freed_memory tunes glibc malloc, which only Linux has')
def test_large_tensors_reuse_memory():
    applied, kept = faults_of_four_more_tensors('1')
    off, fresh = faults_of_four_more_tensors('0')
    assert applied and not off
    pages = 64 * 2**20 // 4096
    assert fresh > 3 * pages           # new mappings: one fault per page (4 x 16384)
    assert kept < pages // 2           # reused heap memory: almost none


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv('RETINEXMAMBA_KEEP_FREED_MEMORY', '0')
    assert keep_freed_memory() is False
