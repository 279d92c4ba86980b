"""Training GoatPose (and HRNet) on COCO keypoints with the paper's recipe; host side (torch).

    goatpose train goatpose-bl --coco-root COCO --out runs/bl
    torchrun --nproc_per_node 4 -m goatpose_edge.train goatpose-bl --coco-root COCO --out runs/bl

Data (``data``) goes through the same codec as inference; loss and schedule in ``recipe``; the loop, checkpoints,
resume and DDP in ``trainer``; starting GoatPose from official HRNet weights in ``init_from``.
"""
