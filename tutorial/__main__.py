"""Run the tutorial: every chapter from one classroom hub page, or one chapter as a learner would.

  make run  |  python -m tutorial
      The hub on http://127.0.0.1:5000 (PORT). Every chapter starts at once, each as its own
      process on its own port (PORT+NN when free). The page lists them with their notes titles
      and live status, shows what each adds to the previous one (app.py and template diffs,
      README with the hub's real ports), each chapter's live log with stop and restart buttons,
      and opens one in two frames, A | B, beside its log. Chapter 10 gets its own Redis, which
      the hub can stop and start (the outage demo), and a second server process on it.
      Ctrl-C stops the hub and every chapter.
  make run LOGS=1  |  python -m tutorial hub --logs
      The same, and every chapter's output in this terminal too, each line prefixed by its chapter.
  make run LAN=1  |  python -m tutorial hub --lan
      The same on all interfaces, for a classroom network: prints the address students open.
      The chapters' debugger is forced off (FLASK_DEBUG is refused). Anyone on the network can use
      the chapters and read the hub; its buttons and secrets stay on this machine, or in a browser
      that opened the instructor's link it prints.
  make run CHAPTER=05  |  python -m tutorial run 05
      One chapter, in the foreground.
  make run CHAPTER=10 SCALE=3  |  python -m tutorial run 10 --scale 3
      Chapter 10 as it runs for real: a private Redis, 3 gunicorn processes (gevent worker;
      ASYNC_MODE=threading: threads), nginx in front on PORT. Ctrl-C stops all of it.
  make run CHAPTER=10 SCALE=3 HA=1  |  python -m tutorial run 10 --scale 3 --ha
      The same on Redis Sentinel: a primary, a replica and three sentinels instead of one Redis.

  make check CHAPTER=06  |  python -m tutorial check 06
      Check the chapter's "Now you try" exercises (its README) against its app.py: done, or what is missing.

Chapters 09 and 10 serve the Socket.IO Admin UI (user admin, the password the hub shows the instructor; read-only
unless FLASK_ADMIN_READ_ONLY=false).
PORT, ASYNC_MODE (threading or eventlet) and FLASK_* settings come from the environment.
"""
import argparse
import os
import sys

from . import CHAPTERS, chapter_dir, exercises, hub, production, sentinel


def run_chapter(name):
    """Replace this process with the chapter's own ``python app.py``, so Ctrl-C reaches it directly."""
    folder = chapter_dir(name)
    port = int(os.environ.get("PORT", 5000))
    if hub.pick_port(os.environ.get("HOST", hub.LOCAL), port) != port:
        raise ValueError(hub.taken_message(port, folder.name[:2]))
    os.chdir(folder)
    os.execv(sys.executable, [sys.executable, "app.py"])


def run_hub(lan=False, logs=False):
    """Start every chapter and serve the hub page until Ctrl-C; refuse the debugger on a network."""
    if lan and hub.debug_requested(os.environ):
        raise ValueError("refusing FLASK_DEBUG with --lan: the debugger runs any code its user types, "
                         "so anyone on the network could run code on this machine. Unset FLASK_DEBUG.")
    hub.serve(hub.Hub(CHAPTERS, host=hub.ALL_INTERFACES if lan else hub.LOCAL,
                      port=int(os.environ.get("PORT", 5000)), async_mode=os.environ.get("ASYNC_MODE", "threading"),
                      echo=logs))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run one chapter, or the hub when no chapter is given")
    run.add_argument("chapter", nargs="?", help="e.g. 01 or 01_setup")
    run.add_argument("--scale", type=int, metavar="N",
                     help="chapter 10 only: N gunicorn processes on one Redis, behind nginx")
    run.add_argument("--ha", action="store_true", help="with --scale: on Redis Sentinel (primary, replica, sentinels)")
    hub_command = commands.add_parser("hub", help="the classroom hub (the default command)")
    hub_command.add_argument("--lan", action="store_true",
                     help="listen on all interfaces for a classroom network: debugger forced off, "
                          "prints the address students open")
    hub_command.add_argument("--logs", action="store_true",
                             help="also print every chapter's output here, each line prefixed by its chapter")
    check = commands.add_parser("check", help="check a chapter's \"Now you try\" exercises against its app.py")
    check.add_argument("chapter", help="e.g. 06 or 06_rooms")
    check.add_argument("--exercise", type=int, metavar="N", help="check exercise N only")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            report, _ = exercises.check(chapter_dir(args.chapter), args.exercise)
            print("\n".join(report))
            parser.exit(0)  # an exercise not done yet is the report's news, not an error
        if args.command == "run" and args.scale:
            if args.chapter is None or chapter_dir(args.chapter) != chapter_dir(production.CHAPTER):
                raise ValueError("--scale runs chapter 10 only: make run CHAPTER=10 SCALE=3")
            (sentinel if args.ha else production).serve(args.scale, int(os.environ.get("PORT", 5000)))
        elif args.command == "run" and args.chapter:
            run_chapter(args.chapter)
        else:
            run_hub(lan=getattr(args, "lan", False), logs=getattr(args, "logs", False))
    except (LookupError, ValueError) as error:
        parser.exit(2, f"{error}\n")
    except OSError as error:
        parser.exit(1, f"the hub could not start on port {os.environ.get('PORT', 5000)}: {error}\n")


if __name__ == "__main__":
    main()
