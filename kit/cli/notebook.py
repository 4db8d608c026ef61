"""`kit notebook`: the offline inference kernel for a bundle, optionally pushed and run on Kaggle."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import FiniteFloatRange, config_option, resolve


@main.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--bundle", "bundle_ref", required=True, help="The bundle dataset (owner/slug) the kernel attaches.")
@click.option("--id", "kernel_ref", default=None, help="The kernel's owner/slug. [default: <owner>/<bundle>-inference]")
@click.option("--blend", "blend_name", default="blend.json", show_default=True,
              help="The blend JSON's name inside the bundle.")
@click.option("--gpu", is_flag=True, help="Run the kernel on a GPU.")
@click.option("--push", is_flag=True, help="Push it, wait for the run, fetch its output and log into OUT/output.")
@click.option("--wait", "wait_s", type=FiniteFloatRange(min=0), default=3 * 3600, show_default=True,
              help="Seconds --push waits for the run to end.")
@config_option
def notebook(out, bundle_ref, kernel_ref, blend_name, gpu, push, wait_s, config_path):
    """Write OUT/kernel-metadata.json and OUT/inference.py: install kit offline from the attached bundle, run
    `kit infer` on /kaggle/input/<competition>, write /kaggle/working/submission.csv. The competition is the
    spec's (kit.yaml). Set $KIT_KAGGLE_ROOT to run the script elsewhere than under /kaggle.

    \b
    kit notebook kernel/ --bundle me/hpa-blend --gpu --push
    kit submit --kernel me/hpa-blend-inference --wait
    """
    from kit.deploy.notebook import push_notebook, write_notebook

    spec = resolve(config_path).config.spec
    made = write_notebook(out, bundle_ref, spec, ref=kernel_ref, gpu=gpu, blend=blend_name)
    click.echo(f"wrote {', '.join(str(p) for p in made.files)} (kernel {made.ref})")
    if push:
        run = push_notebook(made, spec.slug, timeout=wait_s, log=click.echo)
        click.echo(f"kernel {run.ref} version {run.version} complete; output in {out / 'output'}: "
                   + ", ".join(p.name for p in run.files))
