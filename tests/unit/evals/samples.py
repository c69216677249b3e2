"""A few annotation rows sampled verbatim from the public benchmark repositories.

NExT-QA rows and video map: doc-doc/NExT-QA, dataset/nextqa/val.csv and map_vid_vidorID.json,
MIT License, Copyright (c) 2021 Junbin Xiao.
ActivityNet-QA rows: MILVLG/activitynet-qa, dataset/val_q.json and val_a.json,
Apache License 2.0.
No other benchmark's data is copied: their fixtures are written by the tests from the
documented fields.
"""

NEXTQA_CSV = """\
video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4
4010069381,369,640,480,how do the two man play the instrument,0,6,CH,roll the handle,tap their feet,strum the string,hit with sticks,pat with hand
4882821564,2697,640,480,why did the boy pick up one present from the group of them and move to the sofa,2,1,CW,share with the girl,approach lady sitting there,unwrap it,playing with toy train,gesture something
2435100235,1906,640,480,how does the man cycling try to sell the watch to the man in the trishaw,2,7,CH,give him catalogue,show him a video,show him the watch,dismount his bicycle,give him the watch strap
6329077812,1835,640,360,what did the lady do before wipping the baby s mouth,4,7,TP,touch the baby again,turn away,adjusts the baby in grey,smiling,take napkin
8547321641,327,640,362,how many babies are in the video,4,7,DC,kitchen,four,two,three,one
"""  # noqa: E501

NEXTQA_MAP = {
    "4010069381": "1106/4010069381",
    "4882821564": "1104/4882821564",
    "2435100235": "0063/2435100235",
    "6329077812": "0058/6329077812",
    "8547321641": "1101/8547321641",
}

ACTIVITYNET_Q = [
    {
        "video_name": "TIEzvhv6xaI",
        "question": "is the no.3 athlete playing indoor",
        "question_id": "v_TIEzvhv6xaI_2",
    },
    {
        "video_name": "7X3wPRKuAsU",
        "question": "is the athlete wearing long sleeve",
        "question_id": "v_7X3wPRKuAsU_3",
    },
    {
        "video_name": "-_gDSRlC1kg",
        "question": "how many athletes are there",
        "question_id": "v_-_gDSRlC1kg_8",
    },
    {
        "video_name": "bDwGZOk7njI",
        "question": "what are the adults doing in the video",
        "question_id": "v_bDwGZOk7njI_1",
    },
    {
        "video_name": "cjUz6gVQPEs",
        "question": "what is the color of the athlete's trousers",
        "question_id": "v_cjUz6gVQPEs_9",
    },
]

ACTIVITYNET_A = [
    {"answer": "yes", "type": 3, "question_id": "v_TIEzvhv6xaI_2"},
    {"answer": "no", "type": 3, "question_id": "v_7X3wPRKuAsU_3"},
    {"answer": "4", "type": 7, "question_id": "v_-_gDSRlC1kg_8"},
    {"answer": "drive", "type": 0, "question_id": "v_bDwGZOk7njI_1"},
    {"answer": "blue", "type": 4, "question_id": "v_cjUz6gVQPEs_9"},
]
