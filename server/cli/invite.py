"""`phonescreen invite`: queue invitations with the join link (for interviews, or every candidate of a
campaign) and, with --send, send what is due now from this process; otherwise `phonescreen serve` sends them."""
from __future__ import annotations

import argparse
import asyncio

from config.settings import Settings
from models.invitations import INVITATION_CHANNELS
from models.store import Conflict, NotFound, default_expiry
from server.cli.output import CliError, open_store
from server.invitations import InvitationSender, channel_problem


def add_parser(commands: argparse._SubParsersAction) -> None:
    invite = commands.add_parser("invite", help="send candidates their web interview link by e-mail or SMS")
    target = invite.add_mutually_exclusive_group(required=True)
    target.add_argument("--interview", action="append", metavar="ID", help="a scheduled web interview (repeatable)")
    target.add_argument("--campaign", metavar="ID", help="every candidate of this campaign (a web interview is "
                                                         "made for those without one)")
    invite.add_argument("--channel", choices=INVITATION_CHANNELS, default="email")
    invite.add_argument("--send", action="store_true", help="send what is due now, here (else serve sends it)")


def invite(args: argparse.Namespace, settings: Settings) -> int:
    if (problem := channel_problem(settings, args.channel)) is not None:
        raise CliError(problem)
    with open_store(settings) as store:
        refused: list[tuple[str, str]] = []
        if args.campaign:
            expires = default_expiry(store.clock, settings.interviews.invite_expiry_days)
            queued, refused = store.queue_campaign_invitations(args.campaign, args.channel, expires)
        else:
            queued = []
            for interview_id in dict.fromkeys(args.interview):
                try:
                    queued.append(store.queue_invitation(interview_id, args.channel))
                except (NotFound, Conflict) as exc:
                    refused.append((interview_id, str(exc)))
        print(f"queued {len(queued)} invitation(s) by {args.channel}, refused {len(refused)}")
        for who, why in refused:
            print(f"  {who}: {why}")
        if args.send and queued:
            asyncio.run(InvitationSender(settings, store).run_once())
            for invitation in (store.get_invitation(i.id) for i in queued):
                print(f"  {invitation.interview_id}: {invitation.status}"
                      + (f" ({invitation.reason})" if invitation.reason else ""))
    return 1 if refused and not queued else 0
