"""A training run's settings: the flags that change the result are kept in WORK/config.json, and a resumed
run must give the same, except that the stage lengths may be raised to train a finished run further."""
import json
import os

import errors
import image_io

# flags that do not change the result: a resumed run may differ in these
_RUN_ONLY = ('work', 'out', 'threads', 'stop_after', 'pause_after', 'log_every', 'checkpoint_minutes')
# flags a run may raise to train its stages further
_EXTENDABLE = ('gmm_steps', 'tom_steps')


def result_settings(config):
    """The settings that change the result (what config.json and the exported files' metadata hold)."""
    return {key: value for key, value in config.items() if key not in _RUN_ONLY}


def load_config(args):
    """The run's settings; the ones that change the result are stored in WORK/config.json, and a resumed
    run must give the same."""
    config = dict(vars(args), data=os.path.abspath(args.data))
    fixed = result_settings(config)
    path = os.path.join(args.work, 'config.json')
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
        fixed['extended_from'] = stored.get('extended_from', [])
        changed = sorted(k for k in (set(stored) | set(fixed)) - {'extended_from'} if stored.get(k) != fixed.get(k))
        if changed and all(k in _EXTENDABLE and fixed[k] > stored[k] for k in changed):
            # a longer run of the same training: the stages go on from their checkpoints, the learning
            # rate following the longer schedule; the lengths it was run with before are kept
            fixed['extended_from'].append({k: stored[k] for k in _EXTENDABLE})
            image_io.write_bytes(path, json.dumps(fixed, indent=1, sort_keys=True).encode())
        elif changed:
            raise errors.UsageError('%s was written with other settings (%s); use another --work'
                                    % (path, ', '.join(changed)))
    else:
        image_io.write_bytes(path, json.dumps(fixed, indent=1, sort_keys=True).encode())
    return dict(config, extended_from=fixed.get('extended_from', []))

