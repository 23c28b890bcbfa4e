# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A file cache of access tokens shared by the tasks of a play (each task is a new process).

One JSON file per key in a folder only the owner can enter (0700), files 0600, written to a temporary file and
renamed over the old one so a reader never sees half a file. A per-key lock (fcntl) serialises writers, and the
token provider holds it across "read, else acquire, write", so tasks started together make one token request.
The file holds the access token and its expiry, never the credential that obtained it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX; the cache then works without cross-process locking
    fcntl = None

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError

OPTION = "token_cache_dir"
_FORMAT = 1


def cache_key(parts):
    """A file-name-safe key from the identifying values (never secrets: callers hash those first)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FileTokenCache(object):
    def __init__(self, directory):
        if not directory or not str(directory).strip():
            raise ConfigError("must be a folder path", option=OPTION)
        self.directory = os.path.abspath(os.path.expanduser(str(directory)))
        self._ready = False
        self.problems = []  # what went wrong without failing the task (lock files); the provider warns

    def _prepare(self):
        """Create the folder 0700 or check an existing one: ours, and nobody else may enter it. An existing folder's
        mode is never changed: it may be shared (token_cache_dir: /tmp, as root, must not close /tmp to others)."""
        if self._ready:
            return
        created = False
        try:
            os.makedirs(self.directory, mode=0o700)
            created = True
        except OSError as error:
            if error.errno != errno.EEXIST:
                raise ConfigError("cannot create the token cache folder %s: %s" % (self.directory, error.strerror),
                                  option=OPTION, fix="choose a folder this user can create")
        info = os.lstat(self.directory)
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError("%s is not a folder" % self.directory, option=OPTION)
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise ConfigError("the token cache folder %s belongs to another user" % self.directory, option=OPTION,
                              fix="use a folder owned by the user running the module (tokens are credentials)")
        mode = stat.S_IMODE(info.st_mode)
        if created and mode != 0o700:
            os.chmod(self.directory, 0o700)  # makedirs honours the umask: the folder it made gets exactly 0700
        elif mode & 0o077:
            raise ConfigError("the folder %s can be entered by other users (mode %04o)" % (self.directory, mode),
                              option=OPTION, fix="give a folder only its owner can enter (mode 0700) or a path that "
                                                 "does not exist yet (it is created 0700): tokens are credentials")
        self._ready = True

    def _path(self, key, suffix=".json"):
        return os.path.join(self.directory, key + suffix)

    @contextlib.contextmanager
    def lock(self, key):
        """Exclusive per-key lock across processes (held while one of them acquires a token). When the lock file
        cannot be made (a read-only or full disk) the block runs unlocked and `problems` says why: the task still
        gets its token, tasks started together may each ask for one."""
        self._prepare()
        try:
            fd = os.open(self._path(key, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            self.problems.append("cannot create a lock file in %s (%s)" % (self.directory, error.strerror or error))
            yield
            return
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def load(self, key):
        """The stored entry (dict with token, expires_on, ...) or None if missing or unreadable."""
        self._prepare()
        try:
            with open(self._path(key), "r") as handle:
                entry = json.load(handle)
        except (IOError, OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != _FORMAT or not entry.get("token"):
            return None
        return entry

    def store(self, key, token, expires_on, info=None):
        """Write atomically: temporary file (0600 from mkstemp) in the same folder, fsync, rename."""
        self._prepare()
        entry = dict(info or {}, format=_FORMAT, token=token, expires_on=int(expires_on))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(entry, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self, key):
        with contextlib.suppress(OSError):
            os.unlink(self._path(key))
