"""The playback keys of ``view --play``: pause, step, faster, slower.

Only a :class:`~tui.sources.PlaySource` has them; for any other source the keys are
disabled (Textual's ``check_action``) and left out of the palette and the help, so
they never appear to do something they cannot.
"""

from __future__ import annotations

from collections.abc import Callable

from tui.sources import PlaySource, Source


class Playback:
    """Controls the source when it is a playback; ``on_status`` shows its new status."""

    def __init__(self, source: Source, on_status: Callable[[str], None]) -> None:
        self.player = source if isinstance(source, PlaySource) else None
        self.on_status = on_status

    @property
    def available(self) -> bool:
        return self.player is not None

    def _control(self, control: Callable[[PlaySource], None], show: bool = True) -> None:
        """Apply a control; ``show`` puts the player's new status on screen at once."""
        if (player := self.player) is not None:
            control(player)
            if show:
                self.on_status(player.status())

    def pause(self) -> None:
        """Pause, or resume."""
        self._control(PlaySource.toggle_pause)

    def step(self) -> None:
        # the source reports its status itself once it has delivered the event
        self._control(PlaySource.step, show=False)

    def faster(self) -> None:
        self._control(PlaySource.faster)

    def slower(self) -> None:
        self._control(PlaySource.slower)


class PlaybackActions:
    """The playback commands of :mod:`tui.commands` as actions of the app that mixes
    this in (its ``check_action`` disables them for other sources)."""

    playback: Playback

    def action_play_pause(self) -> None:
        self.playback.pause()

    def action_play_step(self) -> None:
        self.playback.step()

    def action_play_faster(self) -> None:
        self.playback.faster()

    def action_play_slower(self) -> None:
        self.playback.slower()
