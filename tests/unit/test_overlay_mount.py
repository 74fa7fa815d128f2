"""How the executor mounts the overlay rootfs: layer by layer with fsconfig where the
kernel has `lowerdir+` (Linux 6.8), else one mount(2) whose options must fit a page.
Recorded calls only; real mounts are covered by the container tests."""

import errno

import pytest

from rootless.errors import RuntimeSetupError
from rootless.kernel.recording import RecordingSyscalls
from rootless.runtime import plan as p
from rootless.runtime.executor import Executor


def overlay(target, lower=("/l/top", "/l/base")):
    return p.MountOverlay(str(target), tuple(lower), "/c/up", "/c/work")


def test_each_layer_is_one_lowerdir_plus_topmost_first(tmp_path):
    sys = RecordingSyscalls()
    Executor(sys).run((overlay(tmp_path),))
    configs = [(c[3], c[4]) for c in sys.calls if c[0] == "fsconfig"]
    assert configs == [("lowerdir+", "/l/top"), ("lowerdir+", "/l/base"),
                       ("upperdir", "/c/up"), ("workdir", "/c/work"),
                       ("userxattr", None), (None, None)]
    assert sys.names()[-2:] == ["fsmount", "move_mount"]
    assert "mount" not in sys.names()


def test_many_layers_and_odd_paths_need_no_single_options_string(tmp_path):
    lower = [f"/store,with:odd/layers/{i:064x}" for i in range(200)]
    sys = RecordingSyscalls()
    Executor(sys).run((overlay(tmp_path, lower),))
    assert [c[4] for c in sys.calls if c[0] == "fsconfig"][:200] == lower


@pytest.mark.parametrize("fail", [{"fsopen": errno.ENOSYS}, {"fsconfig": errno.EINVAL}])
def test_a_kernel_without_lowerdir_plus_gets_one_mount(tmp_path, fail):
    sys = RecordingSyscalls(fail=fail)
    Executor(sys).run((overlay(tmp_path),))
    (mount,) = [c for c in sys.calls if c[0] == "mount"]
    assert mount[5] == "lowerdir=/l/top:/l/base,upperdir=/c/up,workdir=/c/work,userxattr"


def test_without_lowerdir_plus_too_many_layers_are_refused_by_name(tmp_path):
    lower = [f"/home/someone/.local/share/rootless/layers/{i:064x}" for i in range(60)]
    sys = RecordingSyscalls(fail={"fsopen": errno.ENOSYS})
    with pytest.raises(RuntimeSetupError, match="60 layers are too many"):
        Executor(sys).run((overlay(tmp_path, lower),))


def test_without_lowerdir_plus_a_path_with_a_colon_is_refused_by_name(tmp_path):
    sys = RecordingSyscalls(fail={"fsopen": errno.ENOSYS})
    with pytest.raises(RuntimeSetupError, match="holds ':' or ','"):
        Executor(sys).run((overlay(tmp_path, ["/a:b/l"]),))


def test_a_real_fsconfig_failure_names_the_step(tmp_path):
    sys = RecordingSyscalls(fail={"fsmount": errno.EACCES})
    with pytest.raises(RuntimeSetupError, match="permission denied"):
        Executor(sys).run((overlay(tmp_path),))
