"""DemoCam: a small simulated camera, its instrument class, a survey simulator and the demo tasks."""
