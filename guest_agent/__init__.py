"""kamado's guest agent role."""
